//! `cargo wsk`: see `cargo wsk help` and the crate's README.

fn main() -> std::process::ExitCode {
    cargo_wsk::cli::main()
}
