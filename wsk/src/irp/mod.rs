//! The implementation of requests (documented in [`crate::request`]): the
//! block and its completion routine ([`block`]), and the owner's handles
//! ([`handle`]).

pub(crate) mod block;
pub(crate) mod handle;
