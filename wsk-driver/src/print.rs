//! `DbgPrint` with Rust formatting: [`dbg_print!`](crate::dbg_print) and
//! [`dbg_println!`](crate::dbg_println).
//!
//! The text is formatted with `core::fmt` into a [`StackBuf`] (no
//! allocation, no lock), NUL-terminated, and passed as the one argument of
//! `DbgPrint("%s", text)`. That makes the macros safe at any IRQL up to
//! `DISPATCH_LEVEL` (and in fact `DIRQL`, `DbgPrint`'s own limit):
//!
//! - `%s` with an 8-bit string is allowed at every IRQL; the Unicode
//!   conversions (`%wZ`, `%ws`, `%S`, `%C`, `%lc`, `%ls`, `%wc`) only at
//!   `PASSIVE_LEVEL`
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprint>).
//!   Rust's formatting has already turned every `str`, `char` or UTF-16
//!   value into UTF-8 bytes, so `DbgPrint` never converts anything.
//! - The text is an argument, never the format: a `%` in it is printed as
//!   is, and nothing in it is read as a conversion (Microsoft asks that
//!   format strings be static).
//! - "Any single call to `DbgPrint` will only transmit 512 bytes": one call
//!   prints at most [`MAX_LINE`] bytes; longer text ends in `...`.
//!
//! `DbgPrint` is `DbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_INFO_LEVEL, …)`:
//! Windows shows it only when the `DEFAULT` component's filter allows the
//! info level (see `docs/building.md` for the registry value;
//! <https://learn.microsoft.com/windows-hardware/drivers/debugger/reading-and-filtering-debugging-messages>).
//! Under Wine, each call appears on stderr as a
//! `warn:debugstr:vDbgPrintExWithPrefix` line (with `WINEDEBUG=warn+debugstr`).

use core::ffi::CStr;
use core::fmt;
use wsk_sys as sys;

/// The most bytes one [`dbg_print!`](crate::dbg_print) prints, NUL excluded.
pub const MAX_LINE: usize = 511;

/// A fixed-size text buffer on the stack that `core::fmt` writes into.
///
/// Writes past the capacity are dropped and the text then ends in `...`.
/// NUL bytes in the text are replaced by `?` so that the C string is the
/// whole text.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer holding up to `N - 1` bytes of text and the NUL.
    ///
    /// # Panics
    ///
    /// At compile time if `N < 4` (room for `...` and the NUL).
    #[must_use]
    pub const fn new() -> Self {
        const { assert!(N >= 4, "StackBuf needs room for \"...\" and the NUL") };
        Self {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// The text written so far (without the NUL).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Whether some text did not fit.
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The text as a C string (ending in `...` when truncated).
    #[must_use]
    pub fn as_c_str(&mut self) -> &CStr {
        if self.truncated {
            self.buf[self.len - 3..self.len].copy_from_slice(b"...");
        }
        self.buf[self.len] = 0;
        // The text holds no NUL (`write_str` replaces them), so this is all of it.
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or_default()
    }

    /// Prints the text with `DbgPrint("%s", text)`.
    ///
    /// # IRQL
    ///
    /// `<= DIRQL`.
    pub fn print(&mut self) {
        let text = self.as_c_str().as_ptr();
        // SAFETY: the format is a literal with one `%s`, and its one argument
        // is a NUL-terminated string that lives across the call.
        unsafe { sys::DbgPrint(c"%s".as_ptr().cast(), text.cast::<sys::CHAR>()) };
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - 1 - self.len;
        let take = s.len().min(room);
        if take < s.len() {
            self.truncated = true;
        }
        for (dst, &src) in self.buf[self.len..self.len + take]
            .iter_mut()
            .zip(s.as_bytes())
        {
            *dst = if src == 0 { b'?' } else { src };
        }
        self.len += take;
        Ok(())
    }
}

/// Formats `args` and prints it with one `DbgPrint` (used by
/// [`dbg_print!`](crate::dbg_print)).
///
/// # IRQL
///
/// `<= DISPATCH_LEVEL` (the `Display`/`Debug` implementations formatted must
/// not wait or touch paged memory, like any code at that level).
pub fn print(args: fmt::Arguments<'_>) {
    let mut buf = StackBuf::<{ MAX_LINE + 1 }>::new();
    let _ = fmt::write(&mut buf, args);
    buf.print();
}

/// Like [`print`], with a newline (used by [`dbg_println!`](crate::dbg_println)).
///
/// # IRQL
///
/// As [`print`].
pub fn println(args: fmt::Arguments<'_>) {
    let mut buf = StackBuf::<{ MAX_LINE + 1 }>::new();
    let _ = fmt::write(&mut buf, args);
    let _ = fmt::Write::write_str(&mut buf, "\n");
    if buf.is_truncated() {
        // Keep the line ending even when the text was cut.
        buf.len -= 1;
        buf.buf[buf.len] = b'\n';
        buf.len += 1;
    }
    buf.print();
}

/// Prints with `DbgPrint`, formatting like [`core::format_args!`]; no newline
/// is added (`DbgPrint` convention). Usable at IRQL `<= DISPATCH_LEVEL`
/// (see [the module](crate::print)).
///
/// ```
/// # use wsk_sim as _;
/// let port = 7007;
/// wsk_driver::dbg_print!("listening on port {port}\n");
/// ```
#[macro_export]
macro_rules! dbg_print {
    ($($arg:tt)*) => {
        $crate::print::print(::core::format_args!($($arg)*))
    };
}

/// Prints one line with `DbgPrint`, formatting like [`core::format_args!`].
/// Usable at IRQL `<= DISPATCH_LEVEL` (see [the module](crate::print)).
///
/// ```
/// # use wsk_sim as _;
/// let peer: core::net::SocketAddr = "10.0.0.2:49152".parse().unwrap();
/// wsk_driver::dbg_println!("echo-server: accepted {peer} (100% of 1 connection)");
/// ```
#[macro_export]
macro_rules! dbg_println {
    () => {
        $crate::print::print(::core::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::println(::core::format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn formats_and_terminates() {
        let mut b = StackBuf::<32>::new();
        let (port, state) = (7007, "ok");
        write!(b, "port {port} {state}%").unwrap();
        assert_eq!(b.as_c_str().to_bytes(), b"port 7007 ok%");
        assert!(!b.is_truncated());
    }

    #[test]
    fn truncates_with_ellipsis() {
        let mut b = StackBuf::<8>::new();
        write!(b, "0123456789").unwrap();
        assert!(b.is_truncated());
        assert_eq!(b.as_c_str().to_bytes(), b"0123...");
    }

    #[test]
    fn replaces_nul() {
        let mut b = StackBuf::<8>::new();
        b.write_str("a\0b").unwrap();
        assert_eq!(b.as_c_str().to_bytes(), b"a?b");
    }
}
