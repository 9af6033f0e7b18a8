//! The benchmark's workloads and the child side of its protocol.
//!
//! Every `bench_*` example is one global allocator (a process has only one)
//! running exactly this code: `bench_system`, `bench_stats_alloc`,
//! `bench_dhat`, `bench_mod_alloc` and `bench_memassert`. The `bench`
//! example builds them, runs them alternately and prints the ratios.
//!
//! A child is run as `bench_X --workload NAME --scale N [--mode MODE]`, runs
//! the workload once, and prints one line for the runner:
//!
//! ```text
//! BENCH workload=box32 seconds=0.012345678 checksum=42 vmhwm_kib=2048 [key=value...]
//! ```
//!
//! `seconds` is the wall time of the workload alone, measured in the child
//! (process start-up, allocator set-up and the probe are not counted).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The workloads, in table order.
pub const WORKLOADS: [&str; 6] = ["box32", "strings", "threads", "deep", "realloc", "mixed"];

/// What the child was asked to do.
#[derive(Clone, Debug)]
pub struct ChildArgs {
    /// One of [`WORKLOADS`].
    pub workload: String,
    /// Divisor applied to every count (1 = full size, 10 = `--quick`).
    pub scale: u64,
    /// Allocator-specific mode (`bench_memassert`: `off`, `counting`,
    /// `tracking`).
    pub mode: Option<String>,
}

/// Parses `--workload NAME --scale N [--mode MODE]`; exits with a usage
/// message on anything else.
pub fn parse_child_args() -> ChildArgs {
    let mut workload = None;
    let mut scale = 1;
    let mut mode = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--workload" => workload = Some(value()),
            "--scale" => {
                scale = value()
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .unwrap_or_else(|| usage("--scale needs a positive integer"))
            }
            "--mode" => mode = Some(value()),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let workload = workload.unwrap_or_else(|| usage("--workload is required"));
    if !WORKLOADS.contains(&workload.as_str()) {
        usage(&format!("unknown workload {workload}"));
    }
    ChildArgs {
        workload,
        scale,
        mode,
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: bench_X --workload {{{}}} [--scale N] [--mode MODE]\n\
         (normally run by `cargo run --release --example bench`)",
        WORKLOADS.join(",")
    );
    std::process::exit(2);
}

/// One timed run of a workload.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    /// Wall time of the workload, the probe excluded.
    pub seconds: f64,
    /// Depends on every allocation, so none can be optimised away; the same
    /// for every allocator.
    pub checksum: u64,
    /// Peak RSS (VmHWM) read at the probe, for the workloads that probe
    /// (`strings`, while its strings are alive).
    pub vmhwm_at_probe_kib: Option<u64>,
}

/// Runs `workload` once with counts divided by `scale`. `probe` is called
/// once by the `strings` workload while its strings are alive (to measure
/// the tracker's memory per live block); its time is not counted.
pub fn run_workload(workload: &str, scale: u64, probe: &mut dyn FnMut()) -> Timed {
    let mut probe_time = Duration::ZERO;
    let mut vmhwm_at_probe_kib = None;
    let mut timed_probe = || {
        let started = Instant::now();
        // Before the allocator's probe, which may allocate (a snapshot).
        vmhwm_at_probe_kib = Some(vmhwm_kib());
        probe();
        probe_time += started.elapsed();
    };
    let n = |full: u64| (full / scale).max(1);
    let started = Instant::now();
    let checksum = match workload {
        "box32" => box32(n(10_000_000)),
        "strings" => strings(n(1_000_000), &mut timed_probe),
        "threads" => threads(2, n(5_000_000)),
        "deep" => deep(50, n(8_000_000)),
        "realloc" => realloc(n(100_000_000)),
        "mixed" => mixed(n(300_000)),
        other => panic!("unknown workload {other}"),
    };
    let elapsed = started.elapsed().saturating_sub(probe_time);
    Timed {
        seconds: elapsed.as_secs_f64(),
        checksum,
        vmhwm_at_probe_kib,
    }
}

/// `count` × (32-byte `Box` alloc + free).
#[inline(never)]
pub fn box32(count: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..count {
        let block = black_box(Box::new([i; 4]));
        sum = sum.wrapping_add(block[3]);
    }
    sum
}

/// `count` `format!` strings kept in a `Vec`, then dropped; `probe` runs
/// while they are all alive.
#[inline(never)]
pub fn strings(count: u64, probe: &mut dyn FnMut()) -> u64 {
    let mut kept = Vec::new();
    for i in 0..count {
        kept.push(format!("string number {i}"));
    }
    let sum = kept.iter().map(|s| s.len() as u64).sum::<u64>();
    probe();
    drop(black_box(kept));
    sum
}

/// `threads` threads, each doing `per_thread` small `Box` alloc + free.
#[inline(never)]
pub fn threads(threads: u64, per_thread: u64) -> u64 {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut sum = 0u64;
                    for i in 0..per_thread {
                        let block = black_box(Box::new(i ^ t));
                        sum = sum.wrapping_add(*block);
                    }
                    sum
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .fold(0, u64::wrapping_add)
    })
}

/// Recurses `depth` frames, then does `count` small alloc + free there, so
/// every allocation has a stack at least `depth` frames deep.
#[inline(never)]
pub fn deep(depth: u32, count: u64) -> u64 {
    if depth == 0 {
        let mut sum = 0u64;
        for i in 0..count {
            let block = black_box(Box::new([i; 4]));
            sum = sum.wrapping_add(block[0]);
        }
        return sum;
    }
    // Work after the call keeps it from being a tail call.
    let below = deep(black_box(depth - 1), count);
    black_box(below).wrapping_add(u64::from(depth))
}

/// A `Vec<u8>` grown by `push` to `bytes` bytes (reallocating as it goes).
#[inline(never)]
pub fn realloc(bytes: u64) -> u64 {
    let mut v: Vec<u8> = Vec::new();
    for i in 0..bytes {
        v.push(i as u8);
    }
    let v = black_box(v);
    v.len() as u64 + u64::from(v[v.len() / 2])
}

/// A small program: generate `lines` lines of text, parse them, build a
/// `HashMap<String, Vec<String>>`, sum over it, drop it.
#[inline(never)]
pub fn mixed(lines: u64) -> u64 {
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!("user{} item-{} {}\n", i % 5000, i, i * 7 % 1000));
    }
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    let mut sum = 0u64;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(user), Some(item), Some(number)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        sum += number.parse::<u64>().unwrap_or(0);
        map.entry(user.to_string())
            .or_default()
            .push(item.to_uppercase());
    }
    let longest = map.values().map(Vec::len).max().unwrap_or(0) as u64;
    let bytes: u64 = map
        .iter()
        .map(|(k, v)| k.len() as u64 + v.iter().map(|s| s.len() as u64).sum::<u64>())
        .sum();
    drop(black_box(map));
    sum + longest + bytes
}

/// Peak resident set size of this process so far, in KiB (`VmHWM` from
/// `/proc/self/status`; 0 where that file does not exist).
pub fn vmhwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// Prints the line the runner reads. `extra` adds `key=value` pairs (values
/// must not contain spaces).
pub fn print_result(args: &ChildArgs, timed: &Timed, extra: &[(&str, String)]) {
    let vmhwm = timed.vmhwm_at_probe_kib.unwrap_or_else(vmhwm_kib);
    let mut line = format!(
        "BENCH workload={} seconds={:.9} checksum={} vmhwm_kib={}",
        args.workload, timed.seconds, timed.checksum, vmhwm
    );
    for (key, value) in extra {
        line.push_str(&format!(" {key}={value}"));
    }
    println!("{line}");
}

/// The whole child for allocators with nothing to set up: parse the
/// arguments, run the workload, print the result.
pub fn plain_child_main() {
    let args = parse_child_args();
    let timed = run_workload(&args.workload, args.scale, &mut || {});
    print_result(&args, &timed, &[]);
}
