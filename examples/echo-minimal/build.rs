//! The kernel link arguments (`/DRIVER`, `/SUBSYSTEM:NATIVE`, …) for the
//! Windows `cdylib`; see `wsk_driver::build`.

fn main() {
    wsk_driver::build::link_driver();
}
