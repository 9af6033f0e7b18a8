//! The start-up benchmark: what a tracked test's process pays over an
//! untracked one, from `exec` to exit, as cargo-nextest pays it for every
//! test (a process per test).
//!
//! ```text
//! cargo run --release --example startup             # 40 rounds
//! cargo run --release --example startup -- --rounds 100
//! cargo run --example startup                       # the dev profile's binaries
//! ```
//!
//! Each child runs one test body with one small allocation
//! (`startup_lib.rs`): untracked with the system allocator (`system`,
//! twice: the second run of the same binary is the A/A control, its
//! distance from the first the run's noise), inside `stats_alloc`'s
//! `Region`, inside dhat-rs's testing profiler, and as
//! `#[track_alloc(leaks = "0B")]` runs it (`memassert`). The rounds run
//! every configuration once each, in turn; the table shows each one's
//! median wall time and its distance from `system`'s. The target (issue
//! 20): memassert at most 5 ms over `system`, judged beyond the noise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const CONFIGS: [(&str, &str); 5] = [
    ("system", "startup_system"),
    ("system_aa", "startup_system"),
    ("stats_alloc", "startup_stats_alloc"),
    ("dhat", "startup_dhat"),
    ("memassert", "startup_memassert"),
];

/// memassert's target: milliseconds over `system`.
const TARGET_MS: f64 = 5.0;

fn main() {
    let mut rounds = 40usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--rounds takes a positive number"))
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let dir = examples_dir();
    build(&dir);
    // Warm the page cache: the first run of a binary reads it from disk.
    for (_, binary) in CONFIGS {
        run(&dir.join(binary));
    }
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); CONFIGS.len()];
    let mut insides: Vec<Vec<f64>> = vec![Vec::new(); CONFIGS.len()];
    for round in 0..rounds {
        for k in 0..CONFIGS.len() {
            // A different configuration first in each round.
            let i = (k + round) % CONFIGS.len();
            let (wall, inside) = run(&dir.join(CONFIGS[i].1));
            walls[i].push(wall);
            insides[i].push(inside);
        }
    }
    let wall: Vec<f64> = walls.iter_mut().map(|v| median(v)).collect();
    let inside: Vec<f64> = insides.iter_mut().map(|v| median(v)).collect();
    let profile = if dir.ends_with("release/examples") {
        "release"
    } else {
        "dev"
    };
    println!(
        "memassert start-up benchmark ({profile} build): median of {rounds} processes per row"
    );
    println!("wall: exec to exit, measured by this runner; main->end: inside the child\n");
    println!(
        "{:<12} {:>10} {:>12} {:>9} {:>12}",
        "config", "wall", "vs system", "ratio", "main->end"
    );
    for (i, (name, _)) in CONFIGS.iter().enumerate() {
        println!(
            "{:<12} {:>7.2} ms {:>+9.2} ms {:>8.2}x {:>9.3} ms",
            name,
            wall[i],
            wall[i] - wall[0],
            wall[i] / wall[0],
            inside[i]
        );
    }
    let noise = (wall[1] - wall[0]).abs();
    let over = wall[4] - wall[0];
    let verdict = if over <= TARGET_MS - noise {
        "met"
    } else if over > TARGET_MS + noise {
        "MISSED"
    } else {
        "within noise"
    };
    println!("\nnoise floor (system_aa vs system): {noise:.2} ms");
    println!("target: memassert <= system + {TARGET_MS} ms: {over:+.2} ms, {verdict}");
}

fn usage(problem: &str) -> ! {
    eprintln!("startup: {problem}\nusage: cargo run --release --example startup [-- --rounds N]");
    std::process::exit(2);
}

/// Where this runner's sibling examples are built.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the runner's path");
    exe.parent().expect("its folder").to_path_buf()
}

/// Builds the children with this runner's profile.
fn build(dir: &Path) {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.args(["build", "-q", "-p", "memassert-examples"]);
    if dir.ends_with("release/examples") {
        cargo.arg("--release");
    }
    for (_, binary) in &CONFIGS[..] {
        cargo.args(["--example", binary]);
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "building the start-up children failed");
}

/// One process: its wall time and the time it measured from `main` to the
/// end of the test, both in milliseconds.
fn run(exe: &Path) -> (f64, f64) {
    let started = Instant::now();
    let output = Command::new(exe)
        .args(["--exact", "startup_body"])
        .env_remove("MEMASSERT_TRACEMALLOC")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let wall = started.elapsed().as_secs_f64() * 1e3;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}\n{}",
        exe.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let inside = stdout
        .lines()
        .find_map(|l| l.strip_prefix("main_to_end_us="))
        .and_then(|us| us.trim().parse::<f64>().ok())
        .expect("the child prints main_to_end_us")
        / 1e3;
    (wall, inside)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
