//! Detects `-C force-frame-pointers=yes` in the flags this crate is built
//! with. With frame pointers in every frame (std has them), the tracker
//! walks the frame-pointer chain instead of unwinding with DWARF CFI: the
//! same stacks, far cheaper.
//!
//! Also passes on the optimisation level memassert is built with, so that a
//! tracked test built without optimisation can say how to speed it up.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(memassert_frame_pointers)");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    let mut frame_pointers = false;
    for (i, flag) in flags.iter().enumerate() {
        let value = match flag.strip_prefix("-C") {
            Some("") => flags.get(i + 1).copied().unwrap_or(""),
            Some(rest) => rest,
            None => continue,
        };
        if let Some(setting) = value.strip_prefix("force-frame-pointers") {
            frame_pointers = matches!(setting, "" | "=yes" | "=y" | "=on" | "=true");
        }
    }
    let opt_level = std::env::var("OPT_LEVEL").unwrap_or_default();
    println!("cargo:rustc-env=MEMASSERT_OPT_LEVEL={opt_level}");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if frame_pointers && (arch == "x86_64" || arch == "aarch64") && os == "linux" {
        println!("cargo:rustc-cfg=memassert_frame_pointers");
    }
}
