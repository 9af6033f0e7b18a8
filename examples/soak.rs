//! The scope protocol's soak (`soak_unix.rs`): threads, nested scopes,
//! cross-thread frees and reallocs, and `fork()`, checked against a ledger.
//!
//! ```text
//! cargo run --release --example soak -- --seconds 600
//! ```
//!
//! Unix only: it forks. Elsewhere it says so and exits with 2.

#[cfg(unix)]
#[path = "soak_unix.rs"]
mod soak_unix;

#[cfg(unix)]
fn main() {
    soak_unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("soak: needs fork() and Unix processes; run it on Linux or macOS");
    std::process::exit(2);
}
