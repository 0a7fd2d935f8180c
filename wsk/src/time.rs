//! Kernel time-outs.

use core::time::Duration;

use wsk_sys as sys;

/// A relative kernel time-out for `KeWaitForSingleObject`: negative, in 100 ns
/// units, saturating at the longest representable wait.
pub(crate) fn relative_timeout(timeout: Duration) -> sys::LARGE_INTEGER {
    let units = timeout.as_nanos().div_ceil(100);
    let units = i64::try_from(units).unwrap_or(i64::MAX);
    -units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_negative_hundreds_of_nanoseconds() {
        assert_eq!(relative_timeout(Duration::from_millis(1)), -10_000);
        assert_eq!(relative_timeout(Duration::from_nanos(1)), -1);
        assert_eq!(relative_timeout(Duration::ZERO), 0);
        assert_eq!(relative_timeout(Duration::MAX), -i64::MAX);
    }
}
