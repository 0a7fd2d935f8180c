//! The traits a driver implements or calls methods of, for a glob import:
//! `use wsk::prelude::*;`.
//!
//! Each is also named in its own module ([`crate::events`],
//! [`crate::request`], [`crate::options`]); this is the one place a name
//! appears twice.

pub use crate::events::{ConnectionEvents, DatagramEvents, ListenEvents};
pub use crate::options::SocketOption;
pub use crate::request::Waitable;
