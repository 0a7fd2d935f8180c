//! What every socket kind shares, written once against the socket's core
//! with its handler type erased: the core itself (`core`), the calls
//! common to all kinds (`calls`), creation (`create`) and retained
//! indications (`retain`). The kinds themselves live in [`crate::tcp`] and
//! [`crate::udp`].

pub(crate) mod calls;
pub(crate) mod core;
pub(crate) mod create;
pub(crate) mod retain;
