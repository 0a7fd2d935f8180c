//! Diagnostic lines for the kernel debugger (`DbgPrint`), for what a
//! driver got wrong but the crate could recover from without waiting,
//! panicking or bug-checking (a leaked handle, a registration dropped
//! without deregistering).

use core::fmt::{self, Write};

use wsk_sys as sys;

/// Longest line printed; longer ones are cut.
const LINE: usize = 192;

/// A line being formatted on the stack, NUL-terminated when printed.
struct Line {
    bytes: [u8; LINE + 2],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                break;
            }
            // A NUL inside would end the C string early.
            self.bytes[self.len] = if b == 0 { b'?' } else { b };
            self.len += 1;
        }
        Ok(())
    }
}

/// Prints `wsk: ` and `args` and a newline with `DbgPrint`.
///
/// # IRQL
///
/// Any (`DbgPrint` with a non-pageable format and argument).
pub(crate) fn line(args: fmt::Arguments<'_>) {
    let mut line = Line {
        bytes: [0; LINE + 2],
        len: 0,
    };
    let _ = line.write_str("wsk: ");
    let _ = line.write_fmt(args);
    let end = line.len;
    line.bytes[end] = b'\n';
    line.bytes[end + 1] = 0;
    // SAFETY: "%s" with one NUL-terminated string argument on the stack,
    // the form every build declares; DbgPrint is callable at any IRQL with
    // non-pageable arguments.
    unsafe {
        sys::DbgPrint(
            c"%s".as_ptr().cast(),
            line.bytes.as_ptr().cast::<sys::CHAR>(),
        );
    }
}
