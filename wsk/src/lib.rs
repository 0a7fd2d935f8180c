//! Safe Rust binding for the Windows Winsock Kernel (WSK) DDI. Being written: see issue 4.
#![no_std]
