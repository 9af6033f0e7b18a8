//! Benchmark child: `stats_alloc` (global atomic counters, no sites).
//! Run by `cargo run --release --example bench`; see `bench_workloads.rs`.

use std::alloc::System;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let args = memassert_examples::bench_workloads::parse_child_args();
    let timed =
        memassert_examples::bench_workloads::run_workload(&args.workload, args.scale, &mut || {});
    let stats = GLOBAL.stats();
    memassert_examples::bench_workloads::print_result(
        &args,
        &timed,
        &[(
            "allocs",
            (stats.allocations + stats.reallocations).to_string(),
        )],
    );
}
