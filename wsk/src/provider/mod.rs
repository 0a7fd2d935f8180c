//! What the captured provider reports and offers beyond sockets: the WSK
//! and Windows versions, the transport list, cached security descriptors,
//! and the flags of name translation.
//!
//! The two types a driver holds, [`Registration`](crate::Registration) and
//! [`Provider`](crate::Provider), are at the crate root; this module holds
//! the values their methods take and return.
//!
//! ```text
//! Registration::register ──► capture / try_capture ──► Provider ──► sockets (wsk::tcp, wsk::udp)
//!        ▲                                                 │
//!        └──────── deregister (closes what is left, then returns) ◄─┘
//! ```
//!
//! - [`Registration::register`](crate::Registration::register) calls
//!   `WskRegister` (`PASSIVE_LEVEL`) and records the running
//!   [`WindowsVersion`], which decides which provider routines exist.
//! - [`Registration::capture`](crate::Registration::capture) calls
//!   `WskCaptureProviderNPI` with a time-out (`PASSIVE_LEVEL`, may wait for
//!   the provider to load); [`Registration::try_capture`](crate::Registration::try_capture)
//!   uses `WSK_NO_WAIT` (≤ `DISPATCH_LEVEL`). The returned
//!   [`Provider`](crate::Provider) is reference-counted;
//!   `WskReleaseProviderNPI` runs when its last clone — including the ones
//!   sockets hold — drops.
//! - [`Registration::deregister`](crate::Registration::deregister) calls
//!   `WskDeregister`, which waits until every captured NPI is released and
//!   every socket closed. It closes and releases first whatever the driver
//!   still holds or leaked (that wait would never end otherwise) and reports
//!   it ([`Leftovers`]). Dropping a `Registration` never waits: it leaks the
//!   registration (the provider may still use it) and says so with a
//!   `DbgPrint` line.

pub(crate) mod client;
pub(crate) mod control;
pub(crate) mod names;
pub(crate) mod npi;
pub(crate) mod registration;
pub(crate) mod tables;
pub(crate) mod teardown;
pub(crate) mod version;

pub use control::{CachedSecurityDescriptor, Transport};
pub use names::NameInfoFlags;
pub use teardown::Leftovers;
pub use version::{Version, WindowsVersion};
