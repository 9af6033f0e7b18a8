//! Chooses how the tracker captures stacks on the target it is built for,
//! as a cfg the sources test (see README, "Platforms"):
//!
//! - `memassert_frame_pointers`: walk the frame-pointer chain (`frame_walk`).
//!   Where the target keeps frame pointers in every frame that calls
//!   another (rustc's target specs: aarch64 Linux, both macOS targets), or
//!   where the crate is built with `-C force-frame-pointers=yes`. The
//!   cheapest walk: two loads a frame.
//! - `memassert_cached_dwarf`: DWARF CFI with framehop's cached rules
//!   (`dwarf_unwind`), on x86_64 Linux with glibc, whose loader it checks
//!   lock-free (`_dl_find_object`). It falls back to the system unwinder
//!   for frames it cannot vouch for.
//! - neither: the system unwinder (`_Unwind_Backtrace`; `RtlVirtualUnwind`
//!   on Windows).
//!
//! `memassert_thread_wrapper`: memassert defines `pthread_create`, so that
//! threads are owned by how they were started (Linux, not under a
//! sanitizer).
//!
//! `memassert_private_symbols`: symbols from memassert's own DWARF cache
//! (`symbol_source`) where the platform's debug info is DWARF: Linux, macOS,
//! Windows with the GNU toolchain. Elsewhere (windows-msvc's PDB files) the
//! `backtrace` crate resolves them.
//!
//! Also passes on the optimisation level memassert is built with, so that a
//! tracked test built without optimisation can say how to speed it up.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(memassert_frame_pointers)");
    println!("cargo::rustc-check-cfg=cfg(memassert_cached_dwarf)");
    println!("cargo::rustc-check-cfg=cfg(memassert_private_symbols)");
    println!("cargo::rustc-check-cfg=cfg(memassert_thread_wrapper)");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    // Some(true) for `-C force-frame-pointers=yes`, Some(false) for `=no`.
    let mut forced = None;
    for (i, flag) in flags.iter().enumerate() {
        let value = match flag.strip_prefix("-C") {
            Some("") => flags.get(i + 1).copied().unwrap_or(""),
            Some(rest) => rest,
            None => continue,
        };
        if let Some(setting) = value.strip_prefix("force-frame-pointers") {
            forced = Some(matches!(setting, "" | "=yes" | "=y" | "=on" | "=true"));
        }
    }
    let opt_level = std::env::var("OPT_LEVEL").unwrap_or_default();
    println!("cargo:rustc-env=MEMASSERT_OPT_LEVEL={opt_level}");

    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let (arch, os, env) = (
        var("CARGO_CFG_TARGET_ARCH"),
        var("CARGO_CFG_TARGET_OS"),
        var("CARGO_CFG_TARGET_ENV"),
    );
    // The walker reads `[fp]` and `[fp + 8]` and needs the thread's stack
    // bounds (`thread_stack`): 64-bit x86 and Arm, on Linux and macOS.
    let walkable = (arch == "x86_64" || arch == "aarch64") && (os == "linux" || os == "macos");
    let by_abi = (arch == "aarch64" && os == "linux") || os == "macos";
    if walkable && forced.unwrap_or(by_abi) {
        println!("cargo:rustc-cfg=memassert_frame_pointers");
    } else if arch == "x86_64" && os == "linux" && env == "gnu" {
        println!("cargo:rustc-cfg=memassert_cached_dwarf");
    }
    // Threads owned by construction (`alloc/thread_owner.rs`): memassert's
    // own `pthread_create`, on Linux. Not under a sanitizer, whose runtime
    // intercepts `pthread_create` itself and must see every thread start
    // (its interceptor cannot be reached from here).
    let sanitized = flags.iter().any(|f| f.contains("sanitizer"));
    if os == "linux" && !sanitized {
        println!("cargo:rustc-cfg=memassert_thread_wrapper");
    }
    if os == "linux" || os == "macos" || (os == "windows" && env == "gnu") {
        println!("cargo:rustc-cfg=memassert_private_symbols");
    }
}
