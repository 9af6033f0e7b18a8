//! Tells the suite which Rust builds it (`MEMASSERT_TESTS_RUSTC_MINOR`):
//! some checks hold only from a known toolchain on (std's symbols in the v0
//! mangling from 1.95; see `warm_up.rs`).

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let minor = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        // "rustc 1.95.0 (59807616e 2026-04-14)"
        .and_then(|v| {
            v.split_whitespace()
                .nth(1)?
                .split('.')
                .nth(1)?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    println!("cargo:rustc-env=MEMASSERT_TESTS_RUSTC_MINOR={minor}");
}
