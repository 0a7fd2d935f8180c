//! System threads, handles, the object manager subset, the registry and the
//! run-time library routines.

use core::ptr;
use std::cell::Cell;
use std::collections::BTreeMap;

use wsk_sys::{
    ACCESS_MASK, HANDLE, KEY_VALUE_INFORMATION_CLASS, KPROCESSOR_MODE, LONG_PTR, NTSTATUS,
    OBJECT_ATTRIBUTES, PCLIENT_ID, PCVOID, PCWSTR, PHANDLE, PKSTART_ROUTINE, POBJECT_ATTRIBUTES,
    POBJECT_HANDLE_INFORMATION, POBJECT_TYPE, PULONG, PUNICODE_STRING, PVOID, SIZE_T,
    STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_OBJECT_TYPE_MISMATCH, STATUS_SUCCESS, ULONG,
};

use crate::ke;
use crate::pool::{raw_alloc_zeroed, raw_free};
use crate::script::Routine;
use crate::verifier::{self, CallbackKind, InCallback, NoUnwind, Rule, violation};
use crate::world::{self, World, wviolation};

/// Bytes of the fake `KTHREAD` (only its `DISPATCHER_HEADER` is used).
const THREAD_OBJECT_SIZE: usize = 0x40;

/// A kernel handle's target.
#[derive(Clone, Debug)]
pub(crate) enum HandleObj {
    /// A thread object (address of its fake `KTHREAD`).
    Thread(usize),
    /// An open registry key (its normalized path).
    Key(String),
}

/// A fake thread object.
#[derive(Clone, Debug)]
pub(crate) struct ThreadObj {
    pub(crate) refs: i64,
    pub(crate) exited: bool,
}

/// A registry value.
#[derive(Clone, Debug)]
pub(crate) struct RegValue {
    pub(crate) name: String,
    pub(crate) ty: u32,
    pub(crate) data: Vec<u8>,
}

/// Object manager and registry state.
#[derive(Default)]
pub(crate) struct ObState {
    pub(crate) handles: BTreeMap<usize, HandleObj>,
    pub(crate) threads: BTreeMap<usize, ThreadObj>,
    /// Keys by lower-case path; values by lower-case name.
    pub(crate) registry: BTreeMap<String, BTreeMap<String, RegValue>>,
    pub(crate) next_handle: usize,
}

impl ObState {
    fn new_handle(&mut self, obj: HandleObj) -> usize {
        if self.next_handle == 0 {
            self.next_handle = 0x104;
        }
        let h = self.next_handle;
        self.next_handle += 4;
        self.handles.insert(h, obj);
        h
    }
}

thread_local! {
    /// The thread object of the system thread running on this OS thread.
    static CURRENT_SYSTEM_THREAD: Cell<usize> = const { Cell::new(0) };
}

fn handle_value(h: HANDLE) -> usize {
    h as usize
}

fn make_handle(v: usize) -> HANDLE {
    ptr::without_provenance_mut(v)
}

/// Normalizes a registry path: lower case, `\` separators, no trailing `\`.
pub(crate) fn normalize_key(path: &str) -> String {
    let p = path.replace('/', "\\").to_lowercase();
    p.trim_end_matches('\\').to_owned()
}

/// Reads a `UNICODE_STRING` into a `String` (lossy).
///
/// # Safety
///
/// `s` is NULL or a valid `UNICODE_STRING`.
pub(crate) unsafe fn read_unicode(s: PUNICODE_STRING) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: caller's contract.
    let us = unsafe { s.read() };
    if us.Buffer.is_null() || us.Length == 0 {
        return Some(String::new());
    }
    // SAFETY: `Buffer` holds `Length` bytes of UTF-16.
    let units = unsafe { core::slice::from_raw_parts(us.Buffer, usize::from(us.Length) / 2) };
    Some(String::from_utf16_lossy(units))
}

/// The end of a system thread of the machine of `generation`: signals its
/// object and drops the thread's own reference — unless that machine was
/// reset meanwhile (a test finished while the thread was still on its way
/// out, after its object's waiter had moved on): its objects are gone then,
/// and the address may belong to a new machine's object.
fn exit_thread(obj: usize, generation: u64) {
    let free = {
        let mut w = world::lock();
        if w.generation != generation {
            return;
        }
        if let Some(t) = w.ob.threads.get_mut(&obj) {
            t.exited = true;
        }
        // What `ke::signal` does, under the same lock as the generation test.
        ke::signal_state(obj as *mut u8).store(1, core::sync::atomic::Ordering::Release);
        w.notify();
        drop_thread_ref(&mut w, obj)
    };
    if free {
        // SAFETY: the thread object was allocated with this size and its
        // last reference is gone.
        unsafe { raw_free(obj as *mut u8, THREAD_OBJECT_SIZE) };
    }
}

/// Drops one reference to a thread object; whether it was the last (the
/// caller frees the object once the lock is released).
fn drop_thread_ref(w: &mut World, obj: usize) -> bool {
    match w.ob.threads.get_mut(&obj) {
        Some(t) => {
            t.refs -= 1;
            if t.refs <= 0 {
                w.ob.threads.remove(&obj);
                true
            } else {
                false
            }
        }
        None => false,
    }
}

fn release_thread_ref(obj: usize) {
    let free = drop_thread_ref(&mut world::lock(), obj);
    if free {
        // SAFETY: the thread object was allocated with this size and its
        // last reference is gone.
        unsafe { raw_free(obj as *mut u8, THREAD_OBJECT_SIZE) };
    }
}

/// `PsCreateSystemThread`: starts `StartRoutine(StartContext)` on a new
/// thread at `PASSIVE_LEVEL` and returns a handle to its thread object.
///
/// # Safety
///
/// `ThreadHandle` must be writable; close it with [`ZwClose`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn PsCreateSystemThread(
    ThreadHandle: PHANDLE,
    DesiredAccess: ULONG,
    ObjectAttributes: POBJECT_ATTRIBUTES,
    ProcessHandle: HANDLE,
    ClientId: PCLIENT_ID,
    StartRoutine: PKSTART_ROUTINE,
    StartContext: PVOID,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (DesiredAccess, ObjectAttributes, ProcessHandle);
    verifier::check_passive("PsCreateSystemThread");
    let Some(routine) = StartRoutine else {
        violation!(
            Rule::Parameter,
            "PsCreateSystemThread with a NULL StartRoutine"
        );
        return STATUS_INVALID_PARAMETER;
    };
    if ThreadHandle.is_null() {
        violation!(
            Rule::Parameter,
            "PsCreateSystemThread with a NULL ThreadHandle"
        );
        return STATUS_INVALID_PARAMETER;
    }
    let mut w = world::lock();
    if w.faults.take_alloc_failure(Routine::PsCreateSystemThread) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let obj = raw_alloc_zeroed(THREAD_OBJECT_SIZE);
    ke::init_header(obj, ke::THREAD_OBJECT, 0x10, 0);
    let obj_addr = obj as usize;
    let generation = w.generation;
    // One reference for the handle, one for the running thread.
    w.ob.threads.insert(
        obj_addr,
        ThreadObj {
            refs: 2,
            exited: false,
        },
    );
    let h = w.ob.new_handle(HandleObj::Thread(obj_addr));
    let ctx = StartContext as usize;
    let spawned = std::thread::Builder::new()
        .name("wsk-sim-system-thread".into())
        .spawn(move || {
            CURRENT_SYSTEM_THREAD.with(|c| c.set(obj_addr));
            {
                let _cb = InCallback::enter(CallbackKind::Other);
                // SAFETY: the client passed this routine and context.
                unsafe { routine(ctx as PVOID) };
            }
            exit_thread(obj_addr, generation);
        });
    if let Ok(t) = spawned {
        w.threads.push(t);
    } else {
        w.ob.handles.remove(&h);
        w.ob.threads.remove(&obj_addr);
        drop(w);
        // SAFETY: allocated above, never shared.
        unsafe { raw_free(obj, THREAD_OBJECT_SIZE) };
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    drop(w);
    // SAFETY: the caller passes a writable HANDLE.
    unsafe { ThreadHandle.write(make_handle(h)) };
    if !ClientId.is_null() {
        // SAFETY: the caller passes a writable CLIENT_ID.
        unsafe {
            ClientId.write(wsk_sys::CLIENT_ID {
                UniqueProcess: make_handle(4),
                UniqueThread: make_handle(h),
            });
        }
    }
    STATUS_SUCCESS
}

/// `PsTerminateSystemThread`: ends the calling system thread: its object
/// becomes signalled and the OS thread parks until the process exits (a
/// Rust thread cannot be ended from inside).
///
/// # Safety
///
/// Must be called on a thread from [`PsCreateSystemThread`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn PsTerminateSystemThread(ExitStatus: NTSTATUS) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = ExitStatus;
    let obj = CURRENT_SYSTEM_THREAD.with(Cell::get);
    if obj == 0 {
        violation!(
            Rule::Parameter,
            "PsTerminateSystemThread called on a thread that is not a system thread"
        );
        return STATUS_INVALID_PARAMETER;
    }
    CURRENT_SYSTEM_THREAD.with(|c| c.set(0));
    let generation = world::lock().generation;
    exit_thread(obj, generation);
    loop {
        std::thread::park();
    }
}

/// `ObReferenceObjectByHandle`: the thread object behind a thread handle,
/// with a reference the caller drops with `ObDereferenceObject`.
///
/// # Safety
///
/// `Object` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ObReferenceObjectByHandle(
    Handle: HANDLE,
    DesiredAccess: ACCESS_MASK,
    ObjectType: POBJECT_TYPE,
    AccessMode: KPROCESSOR_MODE,
    Object: *mut PVOID,
    HandleInformation: POBJECT_HANDLE_INFORMATION,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (ObjectType, AccessMode);
    verifier::check_passive("ObReferenceObjectByHandle");
    let mut w = world::lock();
    let obj = match w.ob.handles.get(&handle_value(Handle)) {
        None => return STATUS_INVALID_HANDLE,
        Some(HandleObj::Key(_)) => return STATUS_OBJECT_TYPE_MISMATCH,
        Some(HandleObj::Thread(t)) => *t,
    };
    if let Some(t) = w.ob.threads.get_mut(&obj) {
        t.refs += 1;
    }
    drop(w);
    // SAFETY: the caller passes a writable PVOID.
    unsafe { Object.write(obj as PVOID) };
    if !HandleInformation.is_null() {
        // SAFETY: the caller passes a writable OBJECT_HANDLE_INFORMATION.
        unsafe {
            HandleInformation.write(wsk_sys::OBJECT_HANDLE_INFORMATION {
                HandleAttributes: 0,
                GrantedAccess: DesiredAccess,
            });
        }
    }
    STATUS_SUCCESS
}

/// `ObfReferenceObject`: adds a reference to a thread object.
///
/// # Safety
///
/// `Object` must be a live object.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ObfReferenceObject(Object: PVOID) -> LONG_PTR {
    let _g = NoUnwind::enter();
    let mut w = world::lock();
    if let Some(t) = w.ob.threads.get_mut(&(Object as usize)) {
        t.refs += 1;
        LONG_PTR::try_from(t.refs).unwrap_or(LONG_PTR::MAX)
    } else {
        wviolation!(
            w,
            Rule::Parameter,
            "ObReferenceObject({Object:p}): not a live object"
        );
        0
    }
}

/// `ObfDereferenceObject`: drops a reference to a thread object.
///
/// # Safety
///
/// The caller must hold a reference.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("ObDereferenceObject", verifier::DISPATCH_LEVEL);
    let refs = {
        let mut w = world::lock();
        let Some(t) = w.ob.threads.get(&(Object as usize)) else {
            wviolation!(
                w,
                Rule::DoubleFree,
                "ObDereferenceObject({Object:p}): not a live object (dereferenced too often?)"
            );
            return 0;
        };
        t.refs - 1
    };
    release_thread_ref(Object as usize);
    LONG_PTR::try_from(refs).unwrap_or(0)
}

/// `ZwClose`: closes a thread or registry key handle.
///
/// # Safety
///
/// `Handle` must be an open handle.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ZwClose(Handle: HANDLE) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_passive("ZwClose");
    let obj = world::lock().ob.handles.remove(&handle_value(Handle));
    match obj {
        None => {
            violation!(Rule::DoubleFree, "ZwClose({Handle:p}): not an open handle");
            STATUS_INVALID_HANDLE
        }
        Some(HandleObj::Thread(t)) => {
            release_thread_ref(t);
            STATUS_SUCCESS
        }
        Some(HandleObj::Key(_)) => STATUS_SUCCESS,
    }
}

/// `ZwOpenKey`: opens a key of the simulated registry (set by
/// [`Sim::registry_set_dword`](crate::Sim::registry_set_dword) and friends).
/// `STATUS_OBJECT_NAME_NOT_FOUND` for a key that does not exist.
///
/// # Safety
///
/// `KeyHandle` must be writable and `ObjectAttributes` valid.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ZwOpenKey(
    KeyHandle: PHANDLE,
    DesiredAccess: ACCESS_MASK,
    ObjectAttributes: POBJECT_ATTRIBUTES,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = DesiredAccess;
    verifier::check_passive("ZwOpenKey");
    if KeyHandle.is_null() || ObjectAttributes.is_null() {
        violation!(Rule::Parameter, "ZwOpenKey with a NULL argument");
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller passes valid OBJECT_ATTRIBUTES.
    let oa: OBJECT_ATTRIBUTES = unsafe { ObjectAttributes.read() };
    // SAFETY: `ObjectName` is NULL or a valid UNICODE_STRING.
    let name = unsafe { read_unicode(oa.ObjectName) }.unwrap_or_default();
    let mut w = world::lock();
    if w.faults.take_alloc_failure(Routine::ZwOpenKey) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let path = if oa.RootDirectory.is_null() {
        normalize_key(&name)
    } else {
        match w.ob.handles.get(&handle_value(oa.RootDirectory)) {
            Some(HandleObj::Key(root)) => normalize_key(&format!("{root}\\{name}")),
            _ => return STATUS_INVALID_HANDLE,
        }
    };
    let exists = w.ob.registry.keys().any(|k| {
        k == &path || (k.starts_with(&path) && k.as_bytes().get(path.len()) == Some(&b'\\'))
    });
    if !exists {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    let h = w.ob.new_handle(HandleObj::Key(path));
    drop(w);
    // SAFETY: the caller passes a writable HANDLE.
    unsafe { KeyHandle.write(make_handle(h)) };
    STATUS_SUCCESS
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(s) = buf.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// `ZwQueryValueKey`: reads a value as `KeyValueBasicInformation`,
/// `KeyValueFullInformation`, `KeyValuePartialInformation` or their
/// `Align64` forms, with `STATUS_BUFFER_TOO_SMALL` / `STATUS_BUFFER_OVERFLOW`
/// and `*ResultLength` as Windows sets them.
///
/// # Safety
///
/// `KeyValueInformation` must be writable for `Length` bytes and
/// `ResultLength` writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ZwQueryValueKey(
    KeyHandle: HANDLE,
    ValueName: PUNICODE_STRING,
    KeyValueInformationClass: KEY_VALUE_INFORMATION_CLASS,
    KeyValueInformation: PVOID,
    Length: ULONG,
    ResultLength: PULONG,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_passive("ZwQueryValueKey");
    // SAFETY: `ValueName` is NULL or valid.
    let name = unsafe { read_unicode(ValueName) }.unwrap_or_default();
    let value = {
        let w = world::lock();
        let Some(HandleObj::Key(path)) = w.ob.handles.get(&handle_value(KeyHandle)) else {
            return STATUS_INVALID_HANDLE;
        };
        w.ob.registry
            .get(path)
            .and_then(|vals| vals.get(&name.to_lowercase()))
            .cloned()
    };
    let Some(v) = value else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    let name16: Vec<u8> = v.name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let name_len = u32::try_from(name16.len()).unwrap_or(0);
    let data_len = u32::try_from(v.data.len()).unwrap_or(0);
    // Build the full answer, then copy what fits.
    let (header, full): (usize, Vec<u8>) = match KeyValueInformationClass {
        0 => {
            let mut b = vec![0u8; 12];
            put_u32(&mut b, 4, v.ty);
            put_u32(&mut b, 8, name_len);
            b.extend_from_slice(&name16);
            (12, b)
        }
        1 | 3 => {
            let data_off = (20 + name16.len()).next_multiple_of(8);
            let mut b = vec![0u8; data_off];
            put_u32(&mut b, 4, v.ty);
            put_u32(&mut b, 8, u32::try_from(data_off).unwrap_or(0));
            put_u32(&mut b, 12, data_len);
            put_u32(&mut b, 16, name_len);
            b[20..20 + name16.len()].copy_from_slice(&name16);
            b.extend_from_slice(&v.data);
            (20, b)
        }
        2 => {
            let mut b = vec![0u8; 12];
            put_u32(&mut b, 4, v.ty);
            put_u32(&mut b, 8, data_len);
            b.extend_from_slice(&v.data);
            (12, b)
        }
        4 => {
            let mut b = vec![0u8; 8];
            put_u32(&mut b, 0, v.ty);
            put_u32(&mut b, 4, data_len);
            b.extend_from_slice(&v.data);
            (8, b)
        }
        _ => return STATUS_INVALID_PARAMETER,
    };
    let full_len = u32::try_from(full.len()).unwrap_or(u32::MAX);
    if !ResultLength.is_null() {
        // SAFETY: the caller passes a writable ULONG.
        unsafe { ResultLength.write(full_len) };
    }
    let len = Length as usize;
    if len < header {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if KeyValueInformation.is_null() {
        violation!(
            Rule::Parameter,
            "ZwQueryValueKey with a NULL buffer of {Length} bytes"
        );
        return STATUS_INVALID_PARAMETER;
    }
    let n = len.min(full.len());
    // SAFETY: the caller's buffer holds `Length >= n` bytes.
    unsafe { ptr::copy_nonoverlapping(full.as_ptr(), KeyValueInformation.cast::<u8>(), n) };
    if len < full.len() {
        STATUS_BUFFER_OVERFLOW
    } else {
        STATUS_SUCCESS
    }
}

/// `RtlInitUnicodeString`: points `DestinationString` at a NUL-terminated
/// UTF-16 string (or makes it empty for NULL).
///
/// # Safety
///
/// `DestinationString` must be writable; `SourceString` NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn RtlInitUnicodeString(
    DestinationString: PUNICODE_STRING,
    SourceString: PCWSTR,
) {
    let _g = NoUnwind::enter();
    let mut len = 0usize;
    if !SourceString.is_null() {
        // SAFETY: the caller passes a NUL-terminated string; `len` never
        // passes its terminator.
        while unsafe { SourceString.wrapping_add(len).read() } != 0 {
            len += 1;
        }
    }
    let bytes = u16::try_from(len * 2).unwrap_or(0xFFFC).min(0xFFFC);
    let us = wsk_sys::UNICODE_STRING {
        Length: bytes,
        MaximumLength: if SourceString.is_null() { 0 } else { bytes + 2 },
        Buffer: SourceString.cast_mut(),
    };
    // SAFETY: the caller passes a writable UNICODE_STRING.
    unsafe { DestinationString.write(us) };
}

/// `RtlCompareMemory`: the number of leading bytes that match.
///
/// # Safety
///
/// Both buffers must be readable for `Length` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn RtlCompareMemory(
    Source1: PCVOID,
    Source2: PCVOID,
    Length: SIZE_T,
) -> SIZE_T {
    // SAFETY: the caller passes readable buffers of `Length` bytes.
    let a = unsafe { core::slice::from_raw_parts(Source1.cast::<u8>(), Length) };
    // SAFETY: as above.
    let b = unsafe { core::slice::from_raw_parts(Source2.cast::<u8>(), Length) };
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `RtlGetVersion`: the simulated Windows version
/// ([`Sim::set_windows_version`](crate::Sim::set_windows_version)), into an
/// `RTL_OSVERSIONINFOW` or `RTL_OSVERSIONINFOEXW` by its
/// `dwOSVersionInfoSize`. `PASSIVE_LEVEL` only.
///
/// # Safety
///
/// `lpVersionInformation` points to a writable structure of the size its
/// `dwOSVersionInfoSize` gives.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn RtlGetVersion(
    lpVersionInformation: wsk_sys::PRTL_OSVERSIONINFOW,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_passive("RtlGetVersion");
    if lpVersionInformation.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller passes a readable structure.
    let size = unsafe { (*lpVersionInformation).dwOSVersionInfoSize } as usize;
    let ex = size == size_of::<wsk_sys::RTL_OSVERSIONINFOEXW>();
    if size != size_of::<wsk_sys::RTL_OSVERSIONINFOW>() && !ex {
        return STATUS_INVALID_PARAMETER;
    }
    let (major, minor, build) = world::lock().cfg.windows_version;
    let info = wsk_sys::RTL_OSVERSIONINFOW {
        dwOSVersionInfoSize: ULONG::try_from(size).unwrap_or(0),
        dwMajorVersion: major,
        dwMinorVersion: minor,
        dwBuildNumber: build,
        dwPlatformId: wsk_sys::VER_PLATFORM_WIN32_NT,
        szCSDVersion: [0; 128],
    };
    if ex {
        let info = wsk_sys::RTL_OSVERSIONINFOEXW {
            dwOSVersionInfoSize: info.dwOSVersionInfoSize,
            dwMajorVersion: major,
            dwMinorVersion: minor,
            dwBuildNumber: build,
            dwPlatformId: info.dwPlatformId,
            szCSDVersion: [0; 128],
            wServicePackMajor: 0,
            wServicePackMinor: 0,
            wSuiteMask: 0,
            wProductType: 1, // VER_NT_WORKSTATION
            wReserved: 0,
        };
        // SAFETY: the size says the caller passed an RTL_OSVERSIONINFOEXW.
        unsafe {
            lpVersionInformation
                .cast::<wsk_sys::RTL_OSVERSIONINFOEXW>()
                .write(info);
        };
    } else {
        // SAFETY: the caller passes a writable RTL_OSVERSIONINFOW.
        unsafe { lpVersionInformation.write(info) };
    }
    STATUS_SUCCESS
}

/// Sets a registry value (test side).
pub(crate) fn registry_set(path: &str, name: &str, ty: u32, data: Vec<u8>) {
    let mut w = world::lock();
    w.ob.registry
        .entry(normalize_key(path))
        .or_default()
        .insert(
            name.to_lowercase(),
            RegValue {
                name: name.to_owned(),
                ty,
                data,
            },
        );
}

/// Leaked handles and thread objects (end-of-test report).
pub(crate) fn leaks(ob: &ObState) -> Vec<String> {
    let mut out = Vec::new();
    for (h, obj) in &ob.handles {
        match obj {
            HandleObj::Thread(t) => {
                out.push(format!("thread handle {h:#x} (object {t:#x}) not closed"));
            }
            HandleObj::Key(p) => out.push(format!("registry key handle {h:#x} ({p}) not closed")),
        }
    }
    out.extend(running_threads(ob));
    for (addr, t) in &ob.threads {
        if t.exited && t.refs > 0 {
            out.push(format!(
                "thread object {addr:#x} still referenced ({} ObReferenceObjectByHandle \
                 reference(s) not dropped with ObDereferenceObject)",
                t.refs
            ));
        }
    }
    out
}

/// System threads the driver created that have not terminated: they run
/// the driver's code.
pub(crate) fn running_threads(ob: &ObState) -> Vec<String> {
    ob.threads
        .iter()
        .filter(|(_, t)| !t.exited)
        .map(|(addr, _)| format!("system thread {addr:#x} still running"))
        .collect()
}

/// Frees the fake thread objects (end of test).
pub(crate) fn free_all(ob: &mut ObState) {
    for (addr, t) in core::mem::take(&mut ob.threads) {
        if t.exited && t.refs <= 0 {
            // SAFETY: allocated by `PsCreateSystemThread` with this size; the
            // thread has exited and nobody holds a reference.
            unsafe { raw_free(addr as *mut u8, THREAD_OBJECT_SIZE) };
        }
        // A still-running thread keeps its object (it may still signal it);
        // so does one the client still references (reported as a leak): a
        // later wait on it or dereference must not touch freed memory.
    }
    ob.handles.clear();
}
