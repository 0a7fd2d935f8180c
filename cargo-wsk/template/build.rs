//! The link arguments that make the Windows `cdylib` a kernel driver.

fn main() {
    wsk_driver::build::link_driver();
}
