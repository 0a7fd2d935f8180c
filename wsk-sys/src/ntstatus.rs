//! `NTSTATUS` codes a WSK client meets.
//!
//! C header: `ntstatus.h` (Windows Driver Kit 10.0.16299,
//! `Include/10.0.16299.0/shared/ntstatus.h`). Every value below is copied from
//! that header's `#define STATUS_…` line; the descriptions paraphrase its
//! message text, with notes on where WSK or the I/O manager returns the code.
//!
//! The codes cover the WSK routines' documented results (`WskSend`,
//! `WskReceive`, `WskConnect`, `WskAccept`, `WskCaptureProviderNPI`, the event
//! callbacks' return values, …), the transport errors the TCP/IP provider
//! completes IRPs with, and the results of the kernel routines in
//! [`crate::km`] (waits, registry, object manager).
//!
//! Severity is in the top two bits: `0x0…`/`0x4…` success and information,
//! `0x8…` warning, `0xC…` error; see [`NT_SUCCESS`](crate::NT_SUCCESS).
//!
//! Reference: <https://learn.microsoft.com/windows-hardware/drivers/kernel/ntstatus-values>
// The C header writes each code as `((NTSTATUS)0xC000020DL)`: a 32-bit pattern
// reinterpreted as a signed `LONG`. `u32 as i32` is that reinterpretation.
#![allow(clippy::cast_possible_wrap)]

use crate::ntdef::NTSTATUS;

// Success and informational codes.
/// `STATUS_SUCCESS` (`0x00000000`): The operation completed successfully.
pub const STATUS_SUCCESS: NTSTATUS = 0x0000_0000;
/// `STATUS_WAIT_0` (`0x00000000`): A wait was satisfied by the first object (the same value as `STATUS_SUCCESS`).
pub const STATUS_WAIT_0: NTSTATUS = 0x0000_0000;
/// `STATUS_WAIT_1` (`0x00000001`): A multiple-object wait was satisfied by the second object.
pub const STATUS_WAIT_1: NTSTATUS = 0x0000_0001;
/// `STATUS_ABANDONED_WAIT_0` (`0x00000080`): A wait was satisfied by an abandoned mutex (the first object).
pub const STATUS_ABANDONED_WAIT_0: NTSTATUS = 0x0000_0080;
/// `STATUS_USER_APC` (`0x000000C0`): A wait was ended by the delivery of a user-mode APC.
pub const STATUS_USER_APC: NTSTATUS = 0x0000_00C0;
/// `STATUS_KERNEL_APC` (`0x00000100`): A wait was interrupted to deliver a kernel APC.
pub const STATUS_KERNEL_APC: NTSTATUS = 0x0000_0100;
/// `STATUS_ALERTED` (`0x00000101`): An alertable wait was ended because the thread was alerted.
pub const STATUS_ALERTED: NTSTATUS = 0x0000_0101;
/// `STATUS_TIMEOUT` (`0x00000102`): A wait ended because its time-out expired (a success code: test for it before `NT_SUCCESS`).
pub const STATUS_TIMEOUT: NTSTATUS = 0x0000_0102;
/// `STATUS_PENDING` (`0x00000103`): The operation has been started and will complete later: the IRP's completion routine reports the result.
pub const STATUS_PENDING: NTSTATUS = 0x0000_0103;
/// `STATUS_EVENT_PENDING` (`0x40000013`): The indication has entered the pending state ("TDI Event Pending"). WSK: `WskControlSocket` without an IRP returns it when disabling an event callback that is running; the callback is disabled once it returns (an informational success code).
pub const STATUS_EVENT_PENDING: NTSTATUS = 0x4000_0013;

// Warning codes.
/// `STATUS_BUFFER_OVERFLOW` (`0x80000005`): The data did not fit in the buffer; what fit was returned (a warning, not a failure).
pub const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x8000_0005_u32 as i32;
/// `STATUS_DEVICE_BUSY` (`0x80000011`): The device is busy.
pub const STATUS_DEVICE_BUSY: NTSTATUS = 0x8000_0011_u32 as i32;
/// `STATUS_NO_MORE_ENTRIES` (`0x8000001A`): An enumeration has no more entries.
pub const STATUS_NO_MORE_ENTRIES: NTSTATUS = 0x8000_001A_u32 as i32;

// General errors.
/// `STATUS_UNSUCCESSFUL` (`0xC0000001`): The operation failed (unspecified reason).
pub const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC000_0001_u32 as i32;
/// `STATUS_NOT_IMPLEMENTED` (`0xC0000002`): The operation is not implemented (Wine's WSK stubs return it without completing the IRP).
pub const STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC000_0002_u32 as i32;
/// `STATUS_INVALID_INFO_CLASS` (`0xC0000003`): The information class is not valid for this object.
pub const STATUS_INVALID_INFO_CLASS: NTSTATUS = 0xC000_0003_u32 as i32;
/// `STATUS_ACCESS_VIOLATION` (`0xC0000005`): A memory access violation occurred (raised, for example, by `MmProbeAndLockPages`).
pub const STATUS_ACCESS_VIOLATION: NTSTATUS = 0xC000_0005_u32 as i32;
/// `STATUS_INVALID_HANDLE` (`0xC0000008`): The handle is not valid.
pub const STATUS_INVALID_HANDLE: NTSTATUS = 0xC000_0008_u32 as i32;
/// `STATUS_INVALID_PARAMETER` (`0xC000000D`): A parameter is not valid.
pub const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000D_u32 as i32;
/// `STATUS_NO_SUCH_DEVICE` (`0xC000000E`): The device does not exist.
pub const STATUS_NO_SUCH_DEVICE: NTSTATUS = 0xC000_000E_u32 as i32;
/// `STATUS_INVALID_DEVICE_REQUEST` (`0xC0000010`): The request is not a valid operation for the target device.
pub const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC000_0010_u32 as i32;
/// `STATUS_MORE_PROCESSING_REQUIRED` (`0xC0000016`): Returned by an `IoCompletion` routine: the I/O manager must stop completing the IRP, whose owner takes it back.
pub const STATUS_MORE_PROCESSING_REQUIRED: NTSTATUS = 0xC000_0016_u32 as i32;
/// `STATUS_NO_MEMORY` (`0xC0000017`): Not enough virtual memory or quota for the operation.
pub const STATUS_NO_MEMORY: NTSTATUS = 0xC000_0017_u32 as i32;
/// `STATUS_ACCESS_DENIED` (`0xC0000022`): The caller does not have the requested access rights.
pub const STATUS_ACCESS_DENIED: NTSTATUS = 0xC000_0022_u32 as i32;
/// `STATUS_BUFFER_TOO_SMALL` (`0xC0000023`): The buffer is too small; nothing was written to it.
pub const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023_u32 as i32;
/// `STATUS_OBJECT_TYPE_MISMATCH` (`0xC0000024`): The object is not of the type the operation requires.
pub const STATUS_OBJECT_TYPE_MISMATCH: NTSTATUS = 0xC000_0024_u32 as i32;
/// `STATUS_INVALID_PARAMETER_MIX` (`0xC0000030`): The combination of parameters is not valid.
pub const STATUS_INVALID_PARAMETER_MIX: NTSTATUS = 0xC000_0030_u32 as i32;
/// `STATUS_OBJECT_NAME_INVALID` (`0xC0000033`): The object name is not valid.
pub const STATUS_OBJECT_NAME_INVALID: NTSTATUS = 0xC000_0033_u32 as i32;
/// `STATUS_OBJECT_NAME_NOT_FOUND` (`0xC0000034`): The named object (for example a registry key or value) does not exist.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32 as i32;
/// `STATUS_OBJECT_PATH_NOT_FOUND` (`0xC000003A`): A component of the object path does not exist.
pub const STATUS_OBJECT_PATH_NOT_FOUND: NTSTATUS = 0xC000_003A_u32 as i32;
/// `STATUS_DELETE_PENDING` (`0xC0000056`): The object is being deleted.
pub const STATUS_DELETE_PENDING: NTSTATUS = 0xC000_0056_u32 as i32;
/// `STATUS_PROCEDURE_NOT_FOUND` (`0xC000007A`): The procedure address was not found in the module.
pub const STATUS_PROCEDURE_NOT_FOUND: NTSTATUS = 0xC000_007A_u32 as i32;
/// `STATUS_INTEGER_OVERFLOW` (`0xC0000095`): An integer computation overflowed.
pub const STATUS_INTEGER_OVERFLOW: NTSTATUS = 0xC000_0095_u32 as i32;
/// `STATUS_INSUFFICIENT_RESOURCES` (`0xC000009A`): Not enough system resources (pool, IRPs, MDLs, …) to complete the request.
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as i32;
/// `STATUS_NOT_SUPPORTED` (`0xC00000BB`): The request is not supported.
pub const STATUS_NOT_SUPPORTED: NTSTATUS = 0xC000_00BB_u32 as i32;
/// `STATUS_INVALID_USER_BUFFER` (`0xC00000E8`): A buffer supplied by the caller could not be accessed.
pub const STATUS_INVALID_USER_BUFFER: NTSTATUS = 0xC000_00E8_u32 as i32;
/// `STATUS_CANCELLED` (`0xC0000120`): The I/O request was cancelled (also how a provider completes pending IRPs when their socket closes).
pub const STATUS_CANCELLED: NTSTATUS = 0xC000_0120_u32 as i32;
/// `STATUS_FILE_CLOSED` (`0xC0000128`): The file object has already been closed.
pub const STATUS_FILE_CLOSED: NTSTATUS = 0xC000_0128_u32 as i32;
/// `STATUS_INVALID_DEVICE_STATE` (`0xC0000184`): The device is not in a state that allows this request.
pub const STATUS_INVALID_DEVICE_STATE: NTSTATUS = 0xC000_0184_u32 as i32;
/// `STATUS_NOT_FOUND` (`0xC0000225`): The object was not found.
pub const STATUS_NOT_FOUND: NTSTATUS = 0xC000_0225_u32 as i32;
/// `STATUS_NO_MATCH` (`0xC0000272`, `ntstatus.h` 10.0.16299): There was no match
/// (WSK name resolution: the name does not resolve).
pub const STATUS_NO_MATCH: NTSTATUS = 0xC000_0272_u32 as i32;
/// `STATUS_RETRY` (`0xC000022D`): The request should be retried.
pub const STATUS_RETRY: NTSTATUS = 0xC000_022D_u32 as i32;
/// `STATUS_NOINTERFACE` (`0xC00002B9`): The requested interface (or interface version) is not supported.
pub const STATUS_NOINTERFACE: NTSTATUS = 0xC000_02B9_u32 as i32;

// Device and I/O errors.
/// `STATUS_DEVICE_NOT_READY` (`0xC00000A3`): The device is not ready (WSK: the provider NPI is not available yet, or `WskDeregister` was called).
pub const STATUS_DEVICE_NOT_READY: NTSTATUS = 0xC000_00A3_u32 as i32;
/// `STATUS_IO_TIMEOUT` (`0xC00000B5`): The I/O operation did not complete before its time-out expired.
pub const STATUS_IO_TIMEOUT: NTSTATUS = 0xC000_00B5_u32 as i32;
/// `STATUS_FILE_FORCED_CLOSED` (`0xC00000B6`): The object was closed underneath the request (WSK: the socket is no longer functional and must be closed).
pub const STATUS_FILE_FORCED_CLOSED: NTSTATUS = 0xC000_00B6_u32 as i32;
/// `STATUS_UNEXPECTED_IO_ERROR` (`0xC00000E9`): An unexpected I/O error occurred.
pub const STATUS_UNEXPECTED_IO_ERROR: NTSTATUS = 0xC000_00E9_u32 as i32;
/// `STATUS_IO_DEVICE_ERROR` (`0xC0000185`): The device reported an I/O error.
pub const STATUS_IO_DEVICE_ERROR: NTSTATUS = 0xC000_0185_u32 as i32;

// Network and transport errors.
/// `STATUS_BAD_NETWORK_PATH` (`0xC00000BE`): The network path cannot be found.
pub const STATUS_BAD_NETWORK_PATH: NTSTATUS = 0xC000_00BE_u32 as i32;
/// `STATUS_NETWORK_BUSY` (`0xC00000BF`): The network is busy.
pub const STATUS_NETWORK_BUSY: NTSTATUS = 0xC000_00BF_u32 as i32;
/// `STATUS_INVALID_NETWORK_RESPONSE` (`0xC00000C3`): The network responded incorrectly.
pub const STATUS_INVALID_NETWORK_RESPONSE: NTSTATUS = 0xC000_00C3_u32 as i32;
/// `STATUS_UNEXPECTED_NETWORK_ERROR` (`0xC00000C4`): An unexpected network error occurred.
pub const STATUS_UNEXPECTED_NETWORK_ERROR: NTSTATUS = 0xC000_00C4_u32 as i32;
/// `STATUS_NETWORK_NAME_DELETED` (`0xC00000C9`): The network name was deleted.
pub const STATUS_NETWORK_NAME_DELETED: NTSTATUS = 0xC000_00C9_u32 as i32;
/// `STATUS_NETWORK_ACCESS_DENIED` (`0xC00000CA`): Network access is denied.
pub const STATUS_NETWORK_ACCESS_DENIED: NTSTATUS = 0xC000_00CA_u32 as i32;
/// `STATUS_BAD_NETWORK_NAME` (`0xC00000CC`): The network name cannot be found.
pub const STATUS_BAD_NETWORK_NAME: NTSTATUS = 0xC000_00CC_u32 as i32;
/// `STATUS_REQUEST_NOT_ACCEPTED` (`0xC00000D0`): No more connections can be accepted (WSK: an accept event callback refuses the incoming connection).
pub const STATUS_REQUEST_NOT_ACCEPTED: NTSTATUS = 0xC000_00D0_u32 as i32;
/// `STATUS_LOCAL_DISCONNECT` (`0xC000013B`): The local transport closed the connection.
pub const STATUS_LOCAL_DISCONNECT: NTSTATUS = 0xC000_013B_u32 as i32;
/// `STATUS_REMOTE_DISCONNECT` (`0xC000013C`): The remote transport closed the connection.
pub const STATUS_REMOTE_DISCONNECT: NTSTATUS = 0xC000_013C_u32 as i32;
/// `STATUS_INVALID_CONNECTION` (`0xC0000140`): The connection handle is not valid (Wine: `WskAccept` when the peer reset before the accept).
pub const STATUS_INVALID_CONNECTION: NTSTATUS = 0xC000_0140_u32 as i32;
/// `STATUS_INVALID_ADDRESS` (`0xC0000141`): The address handle is not valid.
pub const STATUS_INVALID_ADDRESS: NTSTATUS = 0xC000_0141_u32 as i32;
/// `STATUS_INVALID_BUFFER_SIZE` (`0xC0000206`): The buffer size is not valid for the operation.
pub const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = 0xC000_0206_u32 as i32;
/// `STATUS_INVALID_ADDRESS_COMPONENT` (`0xC0000207`): The transport rejected the network address as invalid.
pub const STATUS_INVALID_ADDRESS_COMPONENT: NTSTATUS = 0xC000_0207_u32 as i32;
/// `STATUS_INVALID_ADDRESS_WILDCARD` (`0xC0000208`): The transport rejected a wildcard in the network address.
pub const STATUS_INVALID_ADDRESS_WILDCARD: NTSTATUS = 0xC000_0208_u32 as i32;
/// `STATUS_TOO_MANY_ADDRESSES` (`0xC0000209`): All available transport addresses are in use.
pub const STATUS_TOO_MANY_ADDRESSES: NTSTATUS = 0xC000_0209_u32 as i32;
/// `STATUS_ADDRESS_ALREADY_EXISTS` (`0xC000020A`): The transport address is already in use.
pub const STATUS_ADDRESS_ALREADY_EXISTS: NTSTATUS = 0xC000_020A_u32 as i32;
/// `STATUS_ADDRESS_CLOSED` (`0xC000020B`): The transport address has been closed.
pub const STATUS_ADDRESS_CLOSED: NTSTATUS = 0xC000_020B_u32 as i32;
/// `STATUS_CONNECTION_DISCONNECTED` (`0xC000020C`): The connection is disconnected.
pub const STATUS_CONNECTION_DISCONNECTED: NTSTATUS = 0xC000_020C_u32 as i32;
/// `STATUS_CONNECTION_RESET` (`0xC000020D`): The connection was reset (abortive close by the peer).
pub const STATUS_CONNECTION_RESET: NTSTATUS = 0xC000_020D_u32 as i32;
/// `STATUS_TOO_MANY_NODES` (`0xC000020E`): The transport cannot acquire more nodes.
pub const STATUS_TOO_MANY_NODES: NTSTATUS = 0xC000_020E_u32 as i32;
/// `STATUS_TRANSACTION_ABORTED` (`0xC000020F`): The transport aborted a pending transaction.
pub const STATUS_TRANSACTION_ABORTED: NTSTATUS = 0xC000_020F_u32 as i32;
/// `STATUS_DATA_NOT_ACCEPTED` (`0xC000021B`): The client did not accept indicated data (WSK: a receive event callback refuses the data).
pub const STATUS_DATA_NOT_ACCEPTED: NTSTATUS = 0xC000_021B_u32 as i32;
/// `STATUS_CONNECTION_REFUSED` (`0xC0000236`): The remote system refused the connection.
pub const STATUS_CONNECTION_REFUSED: NTSTATUS = 0xC000_0236_u32 as i32;
/// `STATUS_GRACEFUL_DISCONNECT` (`0xC0000237`): The connection was closed gracefully.
pub const STATUS_GRACEFUL_DISCONNECT: NTSTATUS = 0xC000_0237_u32 as i32;
/// `STATUS_ADDRESS_ALREADY_ASSOCIATED` (`0xC0000238`): The endpoint already has an address.
pub const STATUS_ADDRESS_ALREADY_ASSOCIATED: NTSTATUS = 0xC000_0238_u32 as i32;
/// `STATUS_ADDRESS_NOT_ASSOCIATED` (`0xC0000239`): The endpoint has no address yet.
pub const STATUS_ADDRESS_NOT_ASSOCIATED: NTSTATUS = 0xC000_0239_u32 as i32;
/// `STATUS_CONNECTION_INVALID` (`0xC000023A`): The operation was attempted on a connection that does not exist.
pub const STATUS_CONNECTION_INVALID: NTSTATUS = 0xC000_023A_u32 as i32;
/// `STATUS_CONNECTION_ACTIVE` (`0xC000023B`): The operation is not valid on an active connection.
pub const STATUS_CONNECTION_ACTIVE: NTSTATUS = 0xC000_023B_u32 as i32;
/// `STATUS_NETWORK_UNREACHABLE` (`0xC000023C`): The remote network is unreachable.
pub const STATUS_NETWORK_UNREACHABLE: NTSTATUS = 0xC000_023C_u32 as i32;
/// `STATUS_HOST_UNREACHABLE` (`0xC000023D`): The remote host is unreachable.
pub const STATUS_HOST_UNREACHABLE: NTSTATUS = 0xC000_023D_u32 as i32;
/// `STATUS_PROTOCOL_UNREACHABLE` (`0xC000023E`): The remote system does not support the transport protocol.
pub const STATUS_PROTOCOL_UNREACHABLE: NTSTATUS = 0xC000_023E_u32 as i32;
/// `STATUS_PORT_UNREACHABLE` (`0xC000023F`): No service is listening on the remote port.
pub const STATUS_PORT_UNREACHABLE: NTSTATUS = 0xC000_023F_u32 as i32;
/// `STATUS_REQUEST_ABORTED` (`0xC0000240`): The request was aborted.
pub const STATUS_REQUEST_ABORTED: NTSTATUS = 0xC000_0240_u32 as i32;
/// `STATUS_CONNECTION_ABORTED` (`0xC0000241`): The local system aborted the connection.
pub const STATUS_CONNECTION_ABORTED: NTSTATUS = 0xC000_0241_u32 as i32;
/// `STATUS_CONNECTION_COUNT_LIMIT` (`0xC0000246`): The limit on concurrent connections has been reached.
pub const STATUS_CONNECTION_COUNT_LIMIT: NTSTATUS = 0xC000_0246_u32 as i32;
/// `STATUS_HOST_DOWN` (`0xC0000350`): The remote system is down.
pub const STATUS_HOST_DOWN: NTSTATUS = 0xC000_0350_u32 as i32;
/// `STATUS_HOPLIMIT_EXCEEDED` (`0xC000A012`): An ICMP hop-limit-exceeded error was received.
pub const STATUS_HOPLIMIT_EXCEEDED: NTSTATUS = 0xC000_A012_u32 as i32;

// A few spot checks of the sign conversion against the decimal values
// (`ntstatus.h` values read as signed 32-bit integers).
static_assertions::const_assert_eq!(STATUS_CONNECTION_RESET, -1_073_741_299);
static_assertions::const_assert_eq!(STATUS_CANCELLED, -1_073_741_536);
static_assertions::const_assert_eq!(STATUS_BUFFER_OVERFLOW, -2_147_483_643);
static_assertions::const_assert_eq!(STATUS_PENDING, 259);
