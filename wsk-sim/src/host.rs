//! [`DriverHost`]: a whole driver loaded and unloaded the way the I/O
//! manager does it, for host tests of `DriverEntry`, `DriverUnload` and
//! everything between.

use std::time::{Duration, Instant};

use wsk_sys::{
    NT_ERROR, NT_SUCCESS, NTSTATUS, PDRIVER_OBJECT, PUNICODE_STRING, STATUS_SUCCESS, UNICODE_STRING,
};

use crate::sim::Sim;
use crate::verifier::{self, Rule, violation};

/// `DRIVER_INITIALIZE`: the signature of a driver's `DriverEntry`, the one
/// `wsk_driver::entry!` exports
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_initialize>).
type DriverInitialize = unsafe extern "system" fn(PDRIVER_OBJECT, PUNICODE_STRING) -> NTSTATUS;

/// The registry path every service key lives under.
const SERVICES: &str = r"\Registry\Machine\System\CurrentControlSet\Services";

/// Where the driver is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `DriverEntry` never ran.
    NotLoaded,
    /// `DriverEntry` returned a success status; `DriverUnload` has not run.
    Loaded,
    /// The last `DriverEntry` failed with this status.
    Failed(NTSTATUS),
    /// `DriverUnload` has run.
    Unloaded,
}

/// A position in the machine's `DbgPrint` output ([`DriverHost::mark`]):
/// the lines printed after it are [`DriverHost::lines_since`] it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineMark(usize);

/// One driver on a simulated machine, played by the test the way the I/O
/// manager and the service control manager play it on Windows: its service
/// key and `Parameters`, its `DriverEntry` ([`load`](Self::load)), its
/// `DriverUnload` ([`unload`](Self::unload)), and what it prints with
/// `DbgPrint` ([`lines`](Self::lines), [`wait_for_line`](Self::wait_for_line)).
///
/// It is named for what it does — it *hosts* a driver, before, during and
/// after its load — rather than `LoadedDriver` (it exists before
/// `DriverEntry` and after `DriverUnload`, and a load can fail) or `Driver`
/// (`wsk_driver::Driver` is the running driver's own trait).
///
/// ```
/// use std::time::Duration;
/// use wsk_sim::{DriverHost, Sim};
/// use wsk_sys::{DbgPrint, NTSTATUS, PDRIVER_OBJECT, PUNICODE_STRING, STATUS_SUCCESS};
///
/// // A driver's two routines (`wsk_driver::entry!` writes them for a driver
/// // built on `wsk-driver`; a test passes `crate::DriverEntry`).
/// #[allow(non_snake_case)]
/// unsafe extern "system" fn DriverEntry(driver: PDRIVER_OBJECT, _key: PUNICODE_STRING) -> NTSTATUS {
///     // SAFETY: DriverEntry's own driver object, valid for the call.
///     unsafe { (*driver).DriverUnload = Some(unload) };
///     // SAFETY: a NUL-terminated format without conversions.
///     unsafe { DbgPrint(c"mydrv: listening\n".as_ptr().cast(), core::ptr::null()) };
///     STATUS_SUCCESS
/// }
/// unsafe extern "system" fn unload(_driver: PDRIVER_OBJECT) {
///     // SAFETY: as above.
///     unsafe { DbgPrint(c"mydrv: unloaded\n".as_ptr().cast(), core::ptr::null()) };
/// }
///
/// let sim = Sim::start();
/// // SAFETY: `DriverEntry` is a DriverEntry; it keeps no state, so it may
/// // be called again.
/// let mut driver = unsafe { DriverHost::new(&sim, "mydrv", DriverEntry) };
/// driver.set_parameter_dword("Port", 7100);
/// assert_eq!(driver.load(), STATUS_SUCCESS);
/// driver.wait_for_line("mydrv: listening");
/// // … peers connect, the test checks what the driver does …
/// let took = driver.unload();
/// assert!(took < Duration::from_secs(2), "unload took {took:?}");
/// assert_eq!(driver.lines(), ["mydrv: listening", "mydrv: unloaded"]);
/// sim.finish(); // nothing leaked, no rule broken
/// ```
///
/// Every `unsafe` operation of loading and unloading is in here; a test
/// writes one `unsafe` block, at [`new`](Self::new), whose contract is that
/// the function really is a `DriverEntry`.
///
/// What the host does that a test may rely on, each from Microsoft's pages:
///
/// - `DriverEntry` runs on the calling thread, which must be at
///   `PASSIVE_LEVEL` outside any callback ("Called at `PASSIVE_LEVEL`",
///   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_initialize>),
///   with the machine's [`driver_object`](Sim::driver_object) and the
///   service key `\Registry\Machine\System\CurrentControlSet\Services\<service>`
///   (the form that page gives) as a counted string with no terminating
///   NUL. Once `DriverEntry` returns, the string's buffer is overwritten
///   and freed: the page says the I/O manager frees it then, so a driver
///   must keep a copy, not the pointer.
/// - `DriverEntry` returns `STATUS_SUCCESS` or an error status (the same
///   page, and
///   <https://learn.microsoft.com/windows-hardware/drivers/kernel/driverentry-return-values>);
///   any other status is a verifier violation ([`Rule::CallbackStatus`]).
///   Per the second page, a success or informational status loads the
///   driver and any other does not.
/// - Each load starts with `DriverObject->DriverUnload` NULL, as in the
///   fresh driver object the I/O manager allocates for each load. The
///   `DriverUnload` that load installs runs at `PASSIVE_LEVEL`
///   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_unload>),
///   once, and never after a `DriverEntry` that failed (the second page
///   above). Calling [`unload`](Self::unload) otherwise — twice, before a
///   load, after a failed one, with no `DriverUnload` installed — is a bug
///   in the test, and panics saying which.
/// - A failed load, or an unload, may be followed by another
///   [`load`](Self::load), as a driver may be "unloaded and reloaded"
///   (<https://learn.microsoft.com/windows-hardware/drivers/kernel/writing-an-unload-routine>);
///   Windows maps a fresh image then, while a test process keeps the
///   driver's statics. The host models one load at a time: a load while
///   loaded panics.
/// - Once `DriverUnload` returns the image is gone, so none of the driver's
///   code may be able to run: a timer still set ("Drivers must cancel any
///   active timers in their Unload routines",
///   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer>),
///   a DPC still queued or running, or a system thread the driver created
///   that has not terminated
///   (<https://learn.microsoft.com/windows-hardware/drivers/kernel/releasing-driver-allocated-resources>)
///   is then a [`Rule::Leak`] violation, raised by [`unload`](Self::unload).
///
/// Dropping the host does not unload the driver: a test that does not
/// unload it leaves whatever the driver holds to the [`Sim`] guard's
/// end-of-test checks, which report it. The host borrows the [`Sim`], so it
/// cannot outlive the machine its driver runs on.
///
/// # Invariants
///
/// `entry` is a `DriverEntry` (the contract of [`new`](Self::new)); the
/// driver object is `sim`'s, valid while `sim` is borrowed; `state` is
/// `State::Loaded` exactly when the last `DriverEntry` returned a
/// success status and its `DriverUnload` has not run.
#[derive(Debug)]
pub struct DriverHost<'sim> {
    sim: &'sim Sim,
    entry: DriverInitialize,
    service_key: String,
    parameters_key: String,
    state: State,
    line_timeout: Duration,
}

impl<'sim> DriverHost<'sim> {
    /// How long [`wait_for_line`](Self::wait_for_line) and its companions
    /// wait unless [`set_line_timeout`](Self::set_line_timeout) says
    /// otherwise.
    pub const DEFAULT_LINE_TIMEOUT: Duration = Duration::from_secs(10);

    /// A host for the driver whose `DriverEntry` is `entry`, installed as
    /// the service `service` (its key
    /// `\Registry\Machine\System\CurrentControlSet\Services\<service>`), not
    /// loaded yet.
    ///
    /// # Safety
    ///
    /// `entry` is a driver's `DriverEntry`, built for the host so that its
    /// kernel imports resolve to this crate (as `wsk_driver::entry!`'s is):
    /// it may be called as the I/O manager calls it — at `PASSIVE_LEVEL` in
    /// a thread that may wait, with the driver's `DRIVER_OBJECT` and its
    /// service key — again after it failed or after its `DriverUnload`
    /// returned, in the same process; the `DriverUnload` it installs may be
    /// called at `PASSIVE_LEVEL`, once after each `DriverEntry` that
    /// returned a success status; and none of the driver's code runs once
    /// its `DriverEntry` failed or its `DriverUnload` returned (Windows
    /// frees the image then,
    /// <https://learn.microsoft.com/windows-hardware/drivers/kernel/unload-routine-environment>).
    ///
    /// # Panics
    ///
    /// If `service` is empty, contains `\` (it names one key, joined to the
    /// `Services` path), or makes a key path longer than a `UNICODE_STRING`
    /// holds.
    #[must_use]
    pub unsafe fn new(
        sim: &'sim Sim,
        service: &str,
        entry: unsafe extern "system" fn(PDRIVER_OBJECT, PUNICODE_STRING) -> NTSTATUS,
    ) -> Self {
        assert!(
            !service.is_empty() && !service.contains('\\'),
            "wsk-sim: DriverHost::new: {service:?} is not a service key name \
             (non-empty, no backslash)"
        );
        let service_key = format!(r"{SERVICES}\{service}");
        assert!(
            u16::try_from(service_key.encode_utf16().count() * 2).is_ok(),
            "wsk-sim: DriverHost::new: the service key of {service:?} is longer \
             than a UNICODE_STRING holds"
        );
        DriverHost {
            sim,
            entry,
            parameters_key: format!(r"{service_key}\Parameters"),
            service_key,
            state: State::NotLoaded,
            line_timeout: Self::DEFAULT_LINE_TIMEOUT,
        }
    }

    /// The machine the driver runs on.
    pub fn sim(&self) -> &'sim Sim {
        self.sim
    }

    /// The service key `DriverEntry` receives:
    /// `\Registry\Machine\System\CurrentControlSet\Services\<service>`.
    #[must_use]
    pub fn service_key(&self) -> &str {
        &self.service_key
    }

    /// The service key's `Parameters` subkey, where a driver's settings
    /// live (for values of other types than
    /// [`set_parameter_dword`](Self::set_parameter_dword) and
    /// [`set_parameter_sz`](Self::set_parameter_sz) set:
    /// [`Sim::registry_set_multi_sz`], [`Sim::registry_set_binary`]).
    #[must_use]
    pub fn parameters_key(&self) -> &str {
        &self.parameters_key
    }

    /// Sets the `REG_DWORD` value `name` under
    /// [`parameters_key`](Self::parameters_key), for the next
    /// [`load`](Self::load) (or a running driver) to read.
    pub fn set_parameter_dword(&self, name: &str, value: u32) {
        self.sim
            .registry_set_dword(&self.parameters_key, name, value);
    }

    /// Sets the `REG_SZ` value `name` under
    /// [`parameters_key`](Self::parameters_key).
    pub fn set_parameter_sz(&self, name: &str, value: &str) {
        self.sim.registry_set_sz(&self.parameters_key, name, value);
    }

    /// Calls `DriverEntry` as the I/O manager does (see [`DriverHost`]) and
    /// returns its status; the driver is loaded if it is `STATUS_SUCCESS`
    /// (or another success status, which is also a violation).
    ///
    /// # Panics
    ///
    /// If the driver is loaded (its `DriverUnload` has not run), if this
    /// thread is above `PASSIVE_LEVEL` or inside a callback, with a
    /// verifier violation ([`Rule::CallbackStatus`]) if `DriverEntry`
    /// returns neither `STATUS_SUCCESS` nor an error status, and with any
    /// violation raised meanwhile.
    pub fn load(&mut self) -> NTSTATUS {
        assert!(
            self.state != State::Loaded,
            "wsk-sim: DriverHost::load: the driver is loaded (its DriverEntry returned \
             a success status and DriverUnload has not run): unload it first"
        );
        assert_passive("load", "DriverEntry");
        let driver = self.sim.driver_object();
        // SAFETY: `driver` is the machine's DRIVER_OBJECT, valid while
        // `self.sim` is borrowed (invariant); nothing else accesses its
        // `DriverUnload` field now: the simulator never does, and none of
        // the driver's code runs (it is not loaded: the contract of `new`).
        unsafe { (*driver).DriverUnload = None };
        let mut buffer: Vec<u16> = self.service_key.encode_utf16().collect();
        let bytes = u16::try_from(buffer.len() * 2).expect("checked by DriverHost::new");
        let mut registry_path = UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: buffer.as_mut_ptr(),
        };
        // SAFETY: `entry` is a DriverEntry that may be called again after a
        // failure or an unload (the contract of `new`); the driver is not
        // loaded (asserted above); this thread is at PASSIVE_LEVEL outside
        // any callback (asserted above) and may wait (it is the test's);
        // `driver` is the driver's object and `registry_path` a valid
        // counted string of its service key, both alive for the call.
        let status = unsafe { (self.entry)(driver, &raw mut registry_path) };
        // The I/O manager frees the string after DriverEntry returns
        // (nc-wdm-driver_initialize): a driver that kept the pointer must
        // not find its path there.
        buffer.fill(0xFFFD);
        drop(buffer);
        // driverentry-return-values: "not a success or informational
        // value" means not loaded.
        self.state = if NT_SUCCESS(status) {
            State::Loaded
        } else {
            State::Failed(status)
        };
        if status != STATUS_SUCCESS && !NT_ERROR(status) {
            violation!(
                Rule::CallbackStatus,
                "DriverEntry returned {status:#010x}, neither STATUS_SUCCESS nor an error status \
                 (https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/\
                 nc-wdm-driver_initialize)"
            );
        }
        self.sim.check();
        status
    }

    /// Calls the `DriverUnload` the last (successful) `DriverEntry`
    /// installed, as the I/O manager does, and returns how long it took.
    ///
    /// # Panics
    ///
    /// If the driver is not loaded — never loaded, its last `DriverEntry`
    /// failed, or already unloaded (`DriverUnload` runs once) — if
    /// `DriverEntry` left `DriverUnload` NULL (the driver cannot be
    /// unloaded), if this thread is above `PASSIVE_LEVEL` or inside a
    /// callback, if the driver's code can still run once `DriverUnload`
    /// returned (a timer set, a DPC queued or running, a system thread not
    /// terminated: [`Rule::Leak`]), and with any violation raised meanwhile.
    pub fn unload(&mut self) -> Duration {
        match self.state {
            State::Loaded => {}
            State::NotLoaded => {
                panic!("wsk-sim: DriverHost::unload: the driver was never loaded (load it first)")
            }
            State::Failed(status) => panic!(
                "wsk-sim: DriverHost::unload: DriverEntry failed ({status:#010x}); the I/O \
                 manager never calls DriverUnload after a failed DriverEntry"
            ),
            State::Unloaded => panic!(
                "wsk-sim: DriverHost::unload: the driver is already unloaded; DriverUnload \
                 runs once per load"
            ),
        }
        assert_passive("unload", "DriverUnload");
        let driver = self.sim.driver_object();
        // SAFETY: `driver` is the machine's DRIVER_OBJECT, valid while
        // `self.sim` is borrowed (invariant); a read of a field the driver
        // wrote in DriverEntry, on this thread.
        let unload = unsafe { (*driver).DriverUnload };
        let unload = unload.expect(
            "wsk-sim: DriverHost::unload: DriverEntry succeeded but left DriverUnload NULL: \
             the driver cannot be unloaded",
        );
        // Before the call: a panic inside cannot unwind (extern "system").
        self.state = State::Unloaded;
        let started = Instant::now();
        // SAFETY: `unload` is the DriverUnload that the last DriverEntry,
        // which returned a success status, installed (it cleared the field
        // first), called once (state was Loaded, now Unloaded), at
        // PASSIVE_LEVEL outside any callback (asserted above) — the
        // contract of `new` — with the driver's object.
        unsafe { unload(driver) };
        let took = started.elapsed();
        let outliving = crate::sim::code_outliving_unload();
        if !outliving.is_empty() {
            violation!(
                Rule::Leak,
                "DriverUnload returned while the driver's code can still run: {}",
                outliving.join("; ")
            );
        }
        self.sim.check();
        took
    }

    /// Whether the driver is loaded: its last `DriverEntry` returned a
    /// success status and its `DriverUnload` has not run.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.state == State::Loaded
    }

    /// Every `DbgPrint` line of the machine so far, one entry per call,
    /// trailing whitespace (the line break) removed.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.lines_since(LineMark(0))
    }

    /// The current end of the `DbgPrint` output: what is printed from now
    /// on is [`lines_since`](Self::lines_since) the mark (for example the
    /// lines of one load out of several).
    #[must_use]
    pub fn mark(&self) -> LineMark {
        LineMark(self.sim.with(|w| w.stats.debug_output.len()))
    }

    /// The `DbgPrint` lines printed since `mark`, as [`lines`](Self::lines)
    /// gives them.
    #[must_use]
    pub fn lines_since(&self, mark: LineMark) -> Vec<String> {
        self.sim.with(|w| {
            w.stats
                .debug_output
                .get(mark.0..)
                .unwrap_or_default()
                .iter()
                .map(|l| l.trim_end().to_owned())
                .collect()
        })
    }

    /// Waits until a `DbgPrint` line contains `text`, and returns the first
    /// such line (as [`lines`](Self::lines) gives it).
    ///
    /// # Panics
    ///
    /// After the [line time-out](Self::set_line_timeout), listing the
    /// lines printed; with any verifier violation raised meanwhile.
    // Waiting is the point; the line is there for a test that reads it.
    #[allow(clippy::must_use_candidate)]
    pub fn wait_for_line(&self, text: &str) -> String {
        self.wait(LineMark(0), &[text])
    }

    /// Waits until a `DbgPrint` line contains any of `texts` (for example
    /// a success or a failure report), and returns the first such line.
    ///
    /// # Panics
    ///
    /// As [`wait_for_line`](Self::wait_for_line).
    // Waiting is the point; the line is there for a test that reads it.
    #[allow(clippy::must_use_candidate)]
    pub fn wait_for_any_line(&self, texts: &[&str]) -> String {
        self.wait(LineMark(0), texts)
    }

    /// Waits until a line printed since `mark` contains `text`, and returns
    /// the first such line: a line of an earlier load does not count.
    ///
    /// # Panics
    ///
    /// As [`wait_for_line`](Self::wait_for_line).
    // Waiting is the point; the line is there for a test that reads it.
    #[allow(clippy::must_use_candidate)]
    pub fn wait_for_line_since(&self, mark: LineMark, text: &str) -> String {
        self.wait(mark, &[text])
    }

    /// Sets how long the `wait_for_*` methods wait
    /// ([`DEFAULT_LINE_TIMEOUT`](Self::DEFAULT_LINE_TIMEOUT) unless set).
    pub fn set_line_timeout(&mut self, timeout: Duration) {
        self.line_timeout = timeout;
    }

    fn wait(&self, mark: LineMark, texts: &[&str]) -> String {
        let deadline = Instant::now() + self.line_timeout;
        loop {
            let lines = self.lines_since(mark);
            if let Some(line) = lines
                .into_iter()
                .find(|l| texts.iter().any(|t| l.contains(t)))
            {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "wsk-sim: no DbgPrint line containing {} within {:?}; the lines: {:#?}",
                texts
                    .iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                self.line_timeout,
                self.lines_since(mark)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Panics unless this thread may run `routine` (`DriverEntry` or
/// `DriverUnload`): at `PASSIVE_LEVEL`, outside any callback.
fn assert_passive(method: &str, routine: &str) {
    let irql = verifier::irql();
    assert!(
        irql == verifier::PASSIVE_LEVEL && verifier::current_callback().is_none(),
        "wsk-sim: DriverHost::{method} at {} or inside a callback; the I/O manager \
         calls {routine} at PASSIVE_LEVEL in a system thread",
        verifier::irql_name(irql)
    );
}
