//! Benchmark child: memassert's `Tracker`, in one of three modes
//! (`--mode`):
//!
//! - `off`: installed, nothing tracing and no scope open (the hot path is
//!   one relaxed load);
//! - `counting`: inside an all-threads counting [`memassert::Scope`]
//!   (`Scope::options().counting()`): exact peak/total/allocs/leaks, a
//!   record per live block, no stacks;
//! - `tracking`: inside an all-threads scope with 16-frame tracebacks, as
//!   `#[track_alloc(threads = "all")]` uses: every live block with its site
//!   stack. On the `strings` workload it also reports the tracker's memory
//!   per live block.
//!
//! Run by `cargo run --release --example bench`; see `bench_workloads.rs`.

use std::time::Instant;

use memassert_examples::bench_workloads::{parse_child_args, print_result, run_workload};

memassert::install!();

/// Frames per traceback in `tracking` mode.
const TRACKING_FRAMES: usize = 16;

/// One allocation once the tracker is on, before the workload's clock
/// starts: the first stack the tracker sees makes it read the binary's
/// symbol table (to tell the user's allocations from std's), a one-time
/// cost per process that would otherwise land in whichever workload runs
/// first.
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
            let scope = memassert::Scope::options().counting().all_threads().start();
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
            let scope = memassert::Scope::options()
                .frames(TRACKING_FRAMES)
                .all_threads()
                .start();
            let warmup = warm_up();
            let mut live = None;
            let timed = run_workload(&args.workload, args.scale, &mut || {
                live = Some((
                    memassert::tracker_memory(),
                    memassert::__private::live_table_bytes(),
                    memassert::tracked_blocks(),
                ));
            });
            let report = scope.finish();
            let mut extra = vec![
                ("allocs", report.allocs().to_string()),
                ("peak", report.peak().to_string()),
                ("warmup_seconds", warmup),
            ];
            if let Some((tracker_bytes, table_bytes, blocks)) = live {
                extra.push(("tracker_bytes", tracker_bytes.to_string()));
                extra.push(("table_bytes", table_bytes.to_string()));
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
