//! Errors: a failing `NTSTATUS`, with names for every code WSK returns.

use core::fmt;

use wsk_sys as sys;

/// The result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A failed WSK or kernel operation: an `NTSTATUS` that is not a success code.
///
/// It converts losslessly to the `NTSTATUS` a driver returns (for example from
/// `DriverEntry`), and prints as its C name (`STATUS_CONNECTION_RESET`).
/// Conditions this crate detects itself use the status the kernel uses for
/// the same condition and say so in the `# Errors` section of the function
/// that returns them.
///
/// ```
/// use wsk::Error;
/// let e = Error::from_raw(wsk_sys::STATUS_CONNECTION_RESET).unwrap();
/// assert_eq!(e, Error::CONNECTION_RESET);
/// assert_eq!(e.name(), Some("STATUS_CONNECTION_RESET"));
/// assert!(e.is_connection_lost());
/// assert!(wsk::Error::from_raw(wsk_sys::STATUS_SUCCESS).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error(i32);

macro_rules! named_errors {
    ($($name:ident = $status:ident: $doc:literal;)*) => {
        impl Error {
            $(
                #[doc = $doc]
                #[doc = concat!("\n\n`", stringify!($status), "`.")]
                pub const $name: Error = Error(sys::$status);
            )*

            /// The C name of the status, if it is one this crate knows.
            #[must_use]
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $(sys::$status => Some(stringify!($status)),)*
                    _ => None,
                }
            }
        }
    };
}

named_errors! {
    UNSUCCESSFUL = STATUS_UNSUCCESSFUL: "The operation failed for an unspecified reason.";
    NOT_IMPLEMENTED = STATUS_NOT_IMPLEMENTED: "The provider does not implement the routine (Wine's `netio.sys` stubs return it).";
    NOT_SUPPORTED = STATUS_NOT_SUPPORTED: "The request is not supported, for example a socket kind or an option the provider lacks, or a routine newer than the negotiated WSK version.";
    INVALID_PARAMETER = STATUS_INVALID_PARAMETER: "A parameter is invalid, for example an empty buffer or an unsupported flag.";
    INVALID_DEVICE_REQUEST = STATUS_INVALID_DEVICE_REQUEST: "The request is not valid for this socket.";
    INVALID_DEVICE_STATE = STATUS_INVALID_DEVICE_STATE: "The socket is in the wrong state for the request, for example closing or already connected.";
    INSUFFICIENT_RESOURCES = STATUS_INSUFFICIENT_RESOURCES: "Memory (an IRP, an MDL, pool) could not be allocated.";
    NO_MEMORY = STATUS_NO_MEMORY: "Not enough memory.";
    BUFFER_OVERFLOW = STATUS_BUFFER_OVERFLOW: "The output did not fit the buffer (data was truncated).";
    BUFFER_TOO_SMALL = STATUS_BUFFER_TOO_SMALL: "The buffer is too small for the result.";
    INVALID_BUFFER_SIZE = STATUS_INVALID_BUFFER_SIZE: "The buffer length is invalid, for example larger than the provider or an MDL can describe.";
    ACCESS_DENIED = STATUS_ACCESS_DENIED: "Access denied, for example binding a port held exclusively.";
    CANCELLED = STATUS_CANCELLED: "The request was cancelled (by `IoCancelIrp`, or because its socket closed).";
    IO_TIMEOUT = STATUS_IO_TIMEOUT: "The operation timed out.";
    DATA_NOT_ACCEPTED = STATUS_DATA_NOT_ACCEPTED: "The data was not accepted.";
    REQUEST_NOT_ACCEPTED = STATUS_REQUEST_NOT_ACCEPTED: "The request was not accepted.";
    CONNECTION_RESET = STATUS_CONNECTION_RESET: "The connection was reset by the peer (abortive disconnect).";
    CONNECTION_REFUSED = STATUS_CONNECTION_REFUSED: "The remote host refused the connection.";
    CONNECTION_ABORTED = STATUS_CONNECTION_ABORTED: "The connection was aborted locally; also returned for a send after an abortive disconnect.";
    CONNECTION_DISCONNECTED = STATUS_CONNECTION_DISCONNECTED: "The connection is disconnected.";
    CONNECTION_ACTIVE = STATUS_CONNECTION_ACTIVE: "The socket is already connected.";
    CONNECTION_INVALID = STATUS_CONNECTION_INVALID: "The connection is not valid.";
    INVALID_CONNECTION = STATUS_INVALID_CONNECTION: "The connection is invalid, for example a client that reset before its connection was accepted.";
    GRACEFUL_DISCONNECT = STATUS_GRACEFUL_DISCONNECT: "The peer disconnected gracefully.";
    ADDRESS_ALREADY_EXISTS = STATUS_ADDRESS_ALREADY_EXISTS: "The local address is already in use.";
    ADDRESS_ALREADY_ASSOCIATED = STATUS_ADDRESS_ALREADY_ASSOCIATED: "The socket is already bound.";
    ADDRESS_NOT_ASSOCIATED = STATUS_ADDRESS_NOT_ASSOCIATED: "The socket is not bound.";
    INVALID_ADDRESS = STATUS_INVALID_ADDRESS: "The address is invalid.";
    INVALID_ADDRESS_COMPONENT = STATUS_INVALID_ADDRESS_COMPONENT: "A part of the address is invalid, for example an address family the socket does not use.";
    NETWORK_UNREACHABLE = STATUS_NETWORK_UNREACHABLE: "The network is unreachable.";
    HOST_UNREACHABLE = STATUS_HOST_UNREACHABLE: "The host is unreachable.";
    PROTOCOL_UNREACHABLE = STATUS_PROTOCOL_UNREACHABLE: "The protocol is unreachable at the remote host.";
    PORT_UNREACHABLE = STATUS_PORT_UNREACHABLE: "The remote port is unreachable.";
    NOT_FOUND = STATUS_NOT_FOUND: "Not found, for example a host name that does not resolve.";
    BAD_NETWORK_PATH = STATUS_BAD_NETWORK_PATH: "The network path (host name) cannot be found.";
    NOINTERFACE = STATUS_NOINTERFACE: "The requested interface (WSK provider NPI) is not available.";
    DEVICE_NOT_READY = STATUS_DEVICE_NOT_READY: "The WSK provider is not ready yet (`WskCaptureProviderNPI` with `WSK_NO_WAIT`).";
    INVALID_HANDLE = STATUS_INVALID_HANDLE: "The handle or object is invalid, for example a closed socket.";
    FILE_CLOSED = STATUS_FILE_CLOSED: "The socket is closed or closing.";
    FILE_FORCED_CLOSED = STATUS_FILE_FORCED_CLOSED: "The socket is no longer functional and must be closed: the provider said so (a routine failed with it, or a callback got a NULL indication), or deregistration closed it under its handle. Nothing but closing is called on it any more.";
    NO_MATCH = STATUS_NO_MATCH: "The name does not resolve (name resolution).";
    INTEGER_OVERFLOW = STATUS_INTEGER_OVERFLOW: "A length or count overflowed.";
}

impl Error {
    /// The error for a failing `NTSTATUS`, or `None` for a success or
    /// informational status.
    ///
    /// Warnings (`0x8…`) count as errors: WSK reports truncation
    /// (`STATUS_BUFFER_OVERFLOW`) that way.
    #[must_use]
    pub const fn from_raw(status: i32) -> Option<Self> {
        if sys::NT_SUCCESS(status) {
            None
        } else {
            Some(Self(status))
        }
    }

    /// Converts an `NTSTATUS` into `Ok(status)` or `Err(Error)`, for code
    /// that calls raw routines.
    ///
    /// # Errors
    ///
    /// The status itself when it is not a success or informational code.
    pub const fn check(status: i32) -> Result<i32> {
        match Self::from_raw(status) {
            None => Ok(status),
            Some(e) => Err(e),
        }
    }

    /// The raw `NTSTATUS` (always negative or a warning).
    #[must_use]
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// Whether the connection is gone: reset by the peer
    /// ([`CONNECTION_RESET`](Self::CONNECTION_RESET)), aborted
    /// ([`CONNECTION_ABORTED`](Self::CONNECTION_ABORTED)), disconnected
    /// ([`CONNECTION_DISCONNECTED`](Self::CONNECTION_DISCONNECTED),
    /// [`GRACEFUL_DISCONNECT`](Self::GRACEFUL_DISCONNECT),
    /// `STATUS_LOCAL_DISCONNECT`, `STATUS_REMOTE_DISCONNECT`), or no longer
    /// valid ([`CONNECTION_INVALID`](Self::CONNECTION_INVALID),
    /// [`INVALID_CONNECTION`](Self::INVALID_CONNECTION), which an accept
    /// reports for a client that reset before it was accepted). Nothing more
    /// can be sent on it; close it.
    #[must_use]
    pub const fn is_connection_lost(self) -> bool {
        matches!(
            self.0,
            sys::STATUS_CONNECTION_RESET
                | sys::STATUS_CONNECTION_ABORTED
                | sys::STATUS_CONNECTION_DISCONNECTED
                | sys::STATUS_GRACEFUL_DISCONNECT
                | sys::STATUS_LOCAL_DISCONNECT
                | sys::STATUS_REMOTE_DISCONNECT
                | sys::STATUS_CONNECTION_INVALID
                | sys::STATUS_INVALID_CONNECTION
        )
    }

    /// Whether the request was cancelled ([`CANCELLED`](Self::CANCELLED)):
    /// its IRP was cancelled (the request was dropped) or its socket closed.
    #[must_use]
    pub const fn is_cancelled(self) -> bool {
        self.0 == sys::STATUS_CANCELLED
    }

    /// Whether the operation timed out ([`IO_TIMEOUT`](Self::IO_TIMEOUT)),
    /// for example a connect the peer never answered, or a
    /// [`block_on_timeout`](crate::block_on_timeout) that gave up.
    #[must_use]
    pub const fn is_timeout(self) -> bool {
        self.0 == sys::STATUS_IO_TIMEOUT
    }

    /// Whether the provider or the running Windows lacks the operation:
    /// [`NOT_IMPLEMENTED`](Self::NOT_IMPLEMENTED) (a routine the provider
    /// does not implement, as Wine's `netio.sys` stubs, including event
    /// callbacks) or [`NOT_SUPPORTED`](Self::NOT_SUPPORTED) (a routine newer
    /// than the running Windows, or an option the provider does not know).
    #[must_use]
    pub const fn is_unsupported(self) -> bool {
        matches!(
            self.0,
            sys::STATUS_NOT_IMPLEMENTED | sys::STATUS_NOT_SUPPORTED
        )
    }

    /// Whether the destination cannot be reached: the network, host,
    /// protocol or port is unreachable
    /// ([`NETWORK_UNREACHABLE`](Self::NETWORK_UNREACHABLE),
    /// [`HOST_UNREACHABLE`](Self::HOST_UNREACHABLE),
    /// [`PROTOCOL_UNREACHABLE`](Self::PROTOCOL_UNREACHABLE),
    /// [`PORT_UNREACHABLE`](Self::PORT_UNREACHABLE)), or the connection was
    /// refused ([`CONNECTION_REFUSED`](Self::CONNECTION_REFUSED)).
    #[must_use]
    pub const fn is_unreachable(self) -> bool {
        matches!(
            self.0,
            sys::STATUS_NETWORK_UNREACHABLE
                | sys::STATUS_HOST_UNREACHABLE
                | sys::STATUS_PROTOCOL_UNREACHABLE
                | sys::STATUS_PORT_UNREACHABLE
                | sys::STATUS_CONNECTION_REFUSED
        )
    }
}

impl From<Error> for i32 {
    /// The `NTSTATUS`, for example for `DriverEntry` to return.
    fn from(e: Error) -> Self {
        e.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Error {
    #[allow(clippy::cast_sign_loss)] // NTSTATUS values print as unsigned hex by convention.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:08X})", self.0 as u32),
            None => write!(f, "NTSTATUS 0x{:08X}", self.0 as u32),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_matches_the_statuses_examples_match_by_hand() {
        for e in [
            Error::CONNECTION_RESET,
            Error::CONNECTION_ABORTED,
            Error::CONNECTION_DISCONNECTED,
            Error::GRACEFUL_DISCONNECT,
            Error::CONNECTION_INVALID,
            Error::INVALID_CONNECTION,
        ] {
            assert!(e.is_connection_lost(), "{e}");
            assert!(
                !e.is_cancelled() && !e.is_timeout() && !e.is_unsupported(),
                "{e}"
            );
        }
        assert!(
            Error::from_raw(sys::STATUS_REMOTE_DISCONNECT).is_some_and(Error::is_connection_lost)
        );
        assert!(Error::CANCELLED.is_cancelled() && !Error::CANCELLED.is_connection_lost());
        assert!(Error::IO_TIMEOUT.is_timeout());
        assert!(Error::NOT_IMPLEMENTED.is_unsupported() && Error::NOT_SUPPORTED.is_unsupported());
        assert!(!Error::INVALID_PARAMETER.is_unsupported());
        assert!(
            Error::HOST_UNREACHABLE.is_unreachable() && Error::CONNECTION_REFUSED.is_unreachable()
        );
        assert!(!Error::CONNECTION_RESET.is_unreachable());
    }

    #[test]
    fn raw_round_trip() {
        let e = Error::from_raw(sys::STATUS_IO_TIMEOUT).unwrap();
        assert_eq!(e.as_raw(), sys::STATUS_IO_TIMEOUT);
        assert_eq!(i32::from(e), sys::STATUS_IO_TIMEOUT);
        assert_eq!(Error::check(sys::STATUS_PENDING), Ok(sys::STATUS_PENDING));
        assert_eq!(Error::check(sys::STATUS_CANCELLED), Err(Error::CANCELLED));
    }
}
