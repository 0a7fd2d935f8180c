//! The panic handler installed by [`runtime!`](macro@crate::runtime): print the
//! message with `DbgPrint`, then stop the machine with `KeBugCheckEx` (a
//! kernel cannot unwind, and continuing after a broken invariant risks
//! corrupting the system).

use crate::print::{MAX_LINE, StackBuf};
use core::fmt::Write as _;
use core::panic::PanicInfo;
use wsk_sys as sys;

/// The bug check code used for a Rust panic: `0x52555354` (`"RUST"`), a
/// code Windows does not use, as `KeBugCheckEx` asks of drivers
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kebugcheckex>;
/// Windows' own codes:
/// <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-code-reference2>).
///
/// Parameters: 1 = address of the NUL-terminated message (on the panicking
/// thread's stack, readable in a crash dump), 2 = its length, 3 = line,
/// 4 = column.
pub const PANIC_BUGCHECK_CODE: u32 = 0x5255_5354;

/// Formats `info` as `driver panicked at FILE:LINE:COL: MESSAGE` into `buf`.
pub fn format_panic<const N: usize>(info: &PanicInfo<'_>, buf: &mut StackBuf<N>) {
    let _ = match info.location() {
        Some(l) => write!(
            buf,
            "driver panicked at {}:{}:{}: {}",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        ),
        None => write!(buf, "driver panicked: {}", info.message()),
    };
}

/// Prints the panic and bug-checks with [`PANIC_BUGCHECK_CODE`].
///
/// # IRQL
///
/// Any level at which `DbgPrint` may be called (`<= DIRQL`).
pub fn bugcheck(info: &PanicInfo<'_>) -> ! {
    let mut buf = StackBuf::<{ MAX_LINE + 1 }>::new();
    format_panic(info, &mut buf);
    let _ = buf.write_str("\n");
    buf.print();
    let (line, column) = info
        .location()
        .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
    let len = buf.as_bytes().len();
    let message = buf.as_c_str().as_ptr() as usize;
    // SAFETY: KeBugCheckEx takes plain integers and does not return.
    unsafe { sys::KeBugCheckEx(PANIC_BUGCHECK_CODE, message, len, line, column) }
}
