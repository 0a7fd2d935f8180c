//! `cargo wsk`: create, build and check, package and test-sign, and run
//! Windows kernel drivers written with [`wsk`](https://docs.rs/wsk), on
//! any host, with nothing but rustup, the toolchain's `rust-lld` and a few
//! Debian packages (`wine64` to run drivers, `osslsigncode` and `openssl`
//! to sign them).
//!
//! ```text
//! cargo install cargo-wsk
//! cargo wsk new mydrv && cd mydrv
//! cargo test                      # host tests through wsk-sim
//! cargo wsk build --release       # target/drivers/x86_64/mydrv.sys, checked
//! cargo wsk package               # signed .sys + .inf + test certificate
//! cargo wsk wine                  # load it in Wine, stream DbgPrint until Ctrl-C
//! cargo wsk wine --timeout 60 --expect "listening on"   # unattended
//! ```
//!
//! The library is what the binary runs, and what the `wsk` repository's
//! own `xtask` uses: [`driver`] (build and check), [`pe`] (the PE reader),
//! [`imports`] (which routine exists on which Windows release),
//! [`package`] (INF, test certificate, signature), [`wine`] (running a
//! driver as a kernel service in Wine), [`template`] (`cargo wsk new`).
//! It has no dependencies.

pub mod cli;
pub mod driver;
pub mod imports;
pub mod json;
pub mod package;
pub mod pe;
pub mod template;
pub mod windows;
pub mod wine;
