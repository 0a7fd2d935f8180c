//! `DriverHost`: a driver written against the raw routines, loaded and
//! unloaded through the host — what its `DriverEntry` receives, the
//! `Parameters` it reads, its lines, and the misuses the host refuses.
#![allow(missing_docs)]

use core::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

use wsk_sim::{Config, DriverHost, Irql, Sim};
use wsk_sys::{
    DbgPrint, HANDLE, InitializeObjectAttributes, KEY_READ, KEY_VALUE_PARTIAL_INFORMATION,
    KeDelayExecutionThread, KernelMode, KeyValuePartialInformation, NTSTATUS, OBJ_CASE_INSENSITIVE,
    OBJ_KERNEL_HANDLE, PDRIVER_OBJECT, PUNICODE_STRING, REG_DWORD, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS, ULONG, UNICODE_STRING, ZwClose, ZwOpenKey, ZwQueryValueKey,
};

/// What the test driver's next `DriverEntry` returns.
static RETURN: AtomicI32 = AtomicI32::new(STATUS_SUCCESS);
/// Whether it installs `DriverUnload`.
static INSTALL_UNLOAD: AtomicBool = AtomicBool::new(true);
/// How long its `DriverUnload` sleeps, in milliseconds.
static UNLOAD_MS: AtomicU32 = AtomicU32::new(0);
/// Whether its `DriverUnload` sets a timer and returns with it set.
static LEAVE_TIMER: AtomicBool = AtomicBool::new(false);

/// A `KTIMER` in the driver's statics.
struct StaticTimer(core::cell::UnsafeCell<core::mem::MaybeUninit<wsk_sys::KTIMER>>);
// SAFETY: touched only through the kernel routines, by one test at a time.
unsafe impl Sync for StaticTimer {}
static TIMER: StaticTimer =
    StaticTimer(core::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()));
/// What each `DriverEntry` saw: the registry path, `Length`,
/// `MaximumLength`, the `DriverUnload` it found, and `Parameters\Port`.
static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: String,
    length: u16,
    maximum_length: u16,
    unload_was_set: bool,
    port: Option<u32>,
}

fn print(line: &core::ffi::CStr) {
    // SAFETY: a NUL-terminated format; `%s` takes the NUL-terminated `line`.
    unsafe { DbgPrint(c"%s\n".as_ptr().cast(), line.as_ptr().cast()) };
}

/// Reads the `REG_DWORD` `name` under `key` as a driver does.
fn read_dword(key: &str, name: &str) -> Option<u32> {
    let mut key_units: Vec<u16> = key.encode_utf16().collect();
    let mut name_units: Vec<u16> = name.encode_utf16().collect();
    let counted = |units: &mut Vec<u16>| UNICODE_STRING {
        Length: u16::try_from(units.len() * 2).unwrap(),
        MaximumLength: u16::try_from(units.len() * 2).unwrap(),
        Buffer: units.as_mut_ptr(),
    };
    let mut key = counted(&mut key_units);
    let mut name = counted(&mut name_units);
    let mut attributes = InitializeObjectAttributes(
        &raw mut key,
        OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
        ptr::null_mut(),
        ptr::null_mut(),
    );
    let mut handle: HANDLE = ptr::null_mut();
    // SAFETY: valid out pointer and attributes naming a live string.
    if unsafe { ZwOpenKey(&raw mut handle, KEY_READ, &raw mut attributes) } != STATUS_SUCCESS {
        return None;
    }
    let mut buffer = [0u8; 64];
    let mut length: ULONG = 0;
    // SAFETY: an open key handle, a live name, a buffer of the size given.
    let status = unsafe {
        ZwQueryValueKey(
            handle,
            &raw mut name,
            KeyValuePartialInformation,
            buffer.as_mut_ptr().cast(),
            64,
            &raw mut length,
        )
    };
    // SAFETY: the handle ZwOpenKey returned, closed once.
    assert_eq!(unsafe { ZwClose(handle) }, STATUS_SUCCESS);
    if status != STATUS_SUCCESS {
        return None;
    }
    // SAFETY: ZwQueryValueKey wrote a KEY_VALUE_PARTIAL_INFORMATION there.
    let info = unsafe {
        buffer
            .as_ptr()
            .cast::<KEY_VALUE_PARTIAL_INFORMATION>()
            .read_unaligned()
    };
    assert_eq!((info.Type, info.DataLength), (REG_DWORD, 4));
    Some(u32::from_le_bytes(buffer[12..16].try_into().unwrap()))
}

#[allow(non_snake_case)]
unsafe extern "system" fn DriverEntry(driver: PDRIVER_OBJECT, path: PUNICODE_STRING) -> NTSTATUS {
    // SAFETY: the I/O manager's (here: the host's) argument, valid for the call.
    let path = unsafe { *path };
    // SAFETY: as above.
    let unload = unsafe { (*driver).DriverUnload };
    // SAFETY: `Buffer` holds `Length` bytes of UTF-16 during the call.
    let units = unsafe { core::slice::from_raw_parts(path.Buffer, usize::from(path.Length) / 2) };
    let key = String::from_utf16(units).unwrap();
    let port = read_dword(&format!(r"{key}\Parameters"), "Port");
    SEEN.lock().unwrap().push(Seen {
        path: key,
        length: path.Length,
        maximum_length: path.MaximumLength,
        unload_was_set: unload.is_some(),
        port,
    });
    let status = RETURN.load(Ordering::Relaxed);
    if INSTALL_UNLOAD.load(Ordering::Relaxed) {
        // SAFETY: DriverEntry fills in its own driver object.
        unsafe { (*driver).DriverUnload = Some(DriverUnload) };
    }
    print(if status == STATUS_SUCCESS {
        c"testdrv: loaded"
    } else {
        c"testdrv: failed"
    });
    status
}

#[allow(non_snake_case)]
unsafe extern "system" fn DriverUnload(_driver: PDRIVER_OBJECT) {
    let ms = UNLOAD_MS.load(Ordering::Relaxed);
    // Relative time, in 100 ns units.
    let mut interval = -i64::from(ms) * 10_000;
    // SAFETY: PASSIVE_LEVEL (DriverUnload), a valid interval.
    let status = unsafe { KeDelayExecutionThread(KernelMode, 0, (&raw mut interval).cast()) };
    assert_eq!(status, STATUS_SUCCESS);
    if LEAVE_TIMER.load(Ordering::Relaxed) {
        let timer = TIMER.0.get().cast::<wsk_sys::KTIMER>();
        // SAFETY: static (resident) KTIMER storage; PASSIVE_LEVEL.
        unsafe { wsk_sys::KeInitializeTimer(timer) };
        // SAFETY: initialised above; an hour from now, no DPC.
        unsafe { wsk_sys::KeSetTimer(timer, -36_000_000_000, ptr::null_mut()) };
    }
    print(c"testdrv: unloaded");
}

/// A benign machine and the test driver's knobs reset.
fn machine() -> Sim {
    let sim = Sim::with_config(Config::default());
    RETURN.store(STATUS_SUCCESS, Ordering::Relaxed);
    INSTALL_UNLOAD.store(true, Ordering::Relaxed);
    UNLOAD_MS.store(0, Ordering::Relaxed);
    LEAVE_TIMER.store(false, Ordering::Relaxed);
    SEEN.lock().unwrap().clear();
    sim
}

fn host(sim: &Sim) -> DriverHost<'_> {
    host_named(sim, "testdrv")
}

fn host_named<'sim>(sim: &'sim Sim, name: &str) -> DriverHost<'sim> {
    // SAFETY: `DriverEntry` above is a DriverEntry: it fills in the driver
    // object and returns, may be called again, and its DriverUnload only
    // waits and prints.
    unsafe { DriverHost::new(sim, name, DriverEntry) }
}

#[test]
fn loads_with_the_service_key_and_parameters_then_unloads_and_reloads() {
    let sim = machine();
    let mut driver = host(&sim);
    let key = r"\Registry\Machine\System\CurrentControlSet\Services\testdrv";
    assert_eq!(driver.service_key(), key);
    assert_eq!(driver.parameters_key(), format!(r"{key}\Parameters"));
    assert_eq!(driver.lines(), Vec::<String>::new());
    driver.set_parameter_dword("Port", 7100);
    driver.set_parameter_sz("Address", "10.0.0.1");
    assert!(!driver.is_loaded());
    assert_eq!(driver.load(), STATUS_SUCCESS);
    assert!(driver.is_loaded());
    assert_eq!(driver.wait_for_line("loaded"), "testdrv: loaded");

    UNLOAD_MS.store(30, Ordering::Relaxed);
    let took = driver.unload();
    assert!(took >= Duration::from_millis(30), "{took:?}");
    assert!(!driver.is_loaded());
    assert_eq!(driver.lines(), ["testdrv: loaded", "testdrv: unloaded"]);

    // A reload: a fresh DriverUnload field, the new Port, and marks that
    // tell this load's lines from the last one's.
    let mark = driver.mark();
    assert!(driver.lines_since(mark).is_empty());
    driver.set_parameter_dword("Port", 7101);
    assert_eq!(driver.load(), STATUS_SUCCESS);
    assert_eq!(
        driver.wait_for_line_since(mark, "testdrv: "),
        "testdrv: loaded"
    );
    assert_eq!(driver.lines_since(mark), ["testdrv: loaded"]);
    UNLOAD_MS.store(0, Ordering::Relaxed);
    driver.unload();
    assert_eq!(
        driver.wait_for_any_line(&["nothing like it", "unloaded"]),
        "testdrv: unloaded"
    );

    let bytes = u16::try_from(key.len() * 2).unwrap();
    let first = Seen {
        path: key.to_owned(),
        length: bytes,
        maximum_length: bytes,
        unload_was_set: false,
        port: Some(7100),
    };
    let second = Seen {
        port: Some(7101),
        ..first.clone()
    };
    assert_eq!(*SEEN.lock().unwrap(), [first, second]);
    sim.finish();
}

#[test]
fn a_failed_load_can_be_retried() {
    let sim = machine();
    let mut driver = host(&sim);
    RETURN.store(STATUS_INVALID_PARAMETER, Ordering::Relaxed);
    assert_eq!(driver.load(), STATUS_INVALID_PARAMETER);
    assert!(!driver.is_loaded());
    RETURN.store(STATUS_SUCCESS, Ordering::Relaxed);
    assert_eq!(driver.load(), STATUS_SUCCESS);
    driver.unload();
    assert_eq!(
        driver.lines(),
        ["testdrv: failed", "testdrv: loaded", "testdrv: unloaded"]
    );
    sim.finish();
}

#[test]
#[should_panic(expected = "already unloaded; DriverUnload runs once per load")]
fn unloading_twice_panics() {
    let sim = machine();
    let mut driver = host(&sim);
    assert_eq!(driver.load(), STATUS_SUCCESS);
    driver.unload();
    driver.unload();
}

#[test]
#[should_panic(
    expected = "DriverEntry failed (0xc000000d); the I/O manager never calls \
                           DriverUnload after a failed DriverEntry"
)]
fn unloading_after_a_failed_load_panics() {
    let sim = machine();
    let mut driver = host(&sim);
    RETURN.store(STATUS_INVALID_PARAMETER, Ordering::Relaxed);
    assert_eq!(driver.load(), STATUS_INVALID_PARAMETER);
    driver.unload();
}

#[test]
#[should_panic(expected = "the driver was never loaded")]
fn unloading_before_a_load_panics() {
    let sim = machine();
    host(&sim).unload();
}

#[test]
#[should_panic(expected = "the driver is loaded")]
fn loading_while_loaded_panics() {
    let sim = machine();
    let mut driver = host(&sim);
    assert_eq!(driver.load(), STATUS_SUCCESS);
    driver.load();
}

#[test]
#[should_panic(expected = "left DriverUnload NULL")]
fn a_driver_without_driver_unload_cannot_be_unloaded() {
    let sim = machine();
    let mut driver = host(&sim);
    // An earlier load's DriverUnload does not count for this one.
    assert_eq!(driver.load(), STATUS_SUCCESS);
    driver.unload();
    INSTALL_UNLOAD.store(false, Ordering::Relaxed);
    assert_eq!(driver.load(), STATUS_SUCCESS);
    driver.unload();
}

#[test]
#[should_panic(
    expected = "DriverEntry returned 0x40000000, neither STATUS_SUCCESS nor an \
                           error status"
)]
fn an_informational_status_from_driver_entry_is_a_violation() {
    let sim = machine();
    let mut driver = host(&sim);
    // STATUS_OBJECT_NAME_EXISTS, an informational status.
    RETURN.store(0x4000_0000, Ordering::Relaxed);
    driver.load();
}

#[test]
#[should_panic(expected = "DriverHost::load at DISPATCH_LEVEL")]
fn loading_above_passive_level_panics() {
    let sim = machine();
    let mut driver = host(&sim);
    sim.at_irql(Irql::Dispatch, || driver.load());
}

#[test]
#[should_panic(expected = "no DbgPrint line containing \"never printed\" within 50ms")]
fn waiting_for_a_line_times_out() {
    let sim = machine();
    let mut driver = host(&sim);
    driver.set_line_timeout(Duration::from_millis(50));
    assert_eq!(driver.load(), STATUS_SUCCESS);
    driver.wait_for_line("never printed");
}

#[test]
#[should_panic(expected = "is not a service key name")]
fn a_service_name_is_one_key() {
    let sim = machine();
    let _ = host_named(&sim, r"a\b");
}

/// "Drivers must cancel any active timers in their Unload routines"
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer>):
/// a `DriverUnload` that returns with a timer set is a `LEAK` violation,
/// raised by `unload()` — not only at the end of the test.
#[test]
#[should_panic(expected = "DriverUnload returned while the driver's code can still run: timer")]
fn a_timer_left_set_by_driver_unload_is_a_violation() {
    let sim = machine();
    let mut driver = host(&sim);
    assert_eq!(driver.load(), STATUS_SUCCESS);
    LEAVE_TIMER.store(true, Ordering::Relaxed);
    driver.unload();
}
