//! `cargo xtask`: project automation. Being written.
fn main() {}
