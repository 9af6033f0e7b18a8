//! Benchmark child: memassert's `Tracker`, in one of three modes
//! (`--mode`):
//!
//! - `off`: installed, nothing tracing and no scope open (the hot path is
//!   one relaxed load);
//! - `counting`: inside an all-threads [`memassert::Scope`]. The runtime has
//!   no counting-only scope (peak/total/allocs without sites) yet, so this is
//!   the cheapest scope it offers, one frame per traceback: it currently
//!   still does full site tracking (stack capture and a live-block record per
//!   allocation).
//! - `tracking`: `memassert::start(16)` plus an open scope: every live block
//!   with its 16-frame site stack, as `#[track_alloc]` uses. On the
//!   `strings` workload it also reports the tracker's memory per live block.
//!
//! Run by `cargo run --release --example bench`; see `bench_workloads.rs`.

use std::time::Instant;

use memassert_examples::bench_workloads::{parse_child_args, print_result, run_workload};

memassert::install!();

/// Frames per traceback in `tracking` mode.
const TRACKING_FRAMES: usize = 16;

/// One allocation once the tracker is on, before the workload's clock
/// starts: the first stack the tracker sees makes it load the binary's debug
/// info (to tell the user's allocations from std's), a one-time cost per
/// process that would otherwise land in whichever workload runs first.
/// Returns its time, which the runner reports apart.
fn warm_up() -> String {
    let started = Instant::now();
    std::hint::black_box(Box::new(0u64));
    format!("{:.6}", started.elapsed().as_secs_f64())
}

fn main() {
    let args = parse_child_args();
    let mode = args.mode.clone().unwrap_or_else(|| "off".to_string());
    assert!(memassert::is_installed());
    match mode.as_str() {
        "off" => {
            let timed = run_workload(&args.workload, args.scale, &mut || {});
            print_result(&args, &timed, &[]);
        }
        "counting" => {
            // TODO(counting scope): replace with the counting-only scope
            // once the runtime has one; today this scope captures a stack
            // and keeps a record for every block.
            let scope = memassert::Scope::options().frames(1).all_threads().start();
            let warmup = warm_up();
            let timed = run_workload(&args.workload, args.scale, &mut || {});
            let report = scope.finish();
            print_result(
                &args,
                &timed,
                &[
                    ("allocs", report.allocs().to_string()),
                    ("peak", report.peak().to_string()),
                    ("warmup_seconds", warmup),
                ],
            );
        }
        "tracking" => {
            memassert::start(TRACKING_FRAMES);
            let scope = memassert::Scope::options()
                .frames(TRACKING_FRAMES)
                .all_threads()
                .start();
            let warmup = warm_up();
            let mut live = None;
            let timed = run_workload(&args.workload, args.scale, &mut || {
                // Tracker memory first: the snapshot that counts the blocks
                // resolves symbols, which the tracker then holds too.
                let tracker_bytes = memassert::tracker_memory();
                let blocks = memassert::take_snapshot().traces().len();
                live = Some((tracker_bytes, blocks));
            });
            let report = scope.finish();
            memassert::stop();
            let mut extra = vec![
                ("allocs", report.allocs().to_string()),
                ("peak", report.peak().to_string()),
                ("warmup_seconds", warmup),
            ];
            if let Some((tracker_bytes, blocks)) = live {
                extra.push(("tracker_bytes", tracker_bytes.to_string()));
                extra.push(("live_blocks", blocks.to_string()));
            }
            print_result(&args, &timed, &extra);
        }
        other => {
            eprintln!("bench_memassert: unknown --mode {other} (off, counting, tracking)");
            std::process::exit(2);
        }
    }
}
