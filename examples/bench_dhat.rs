//! Benchmark child: dhat-rs in testing mode (a backtrace per allocation,
//! one global lock).
//! Run by `cargo run --release --example bench`; see `bench_workloads.rs`.

#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

fn main() {
    let args = memassert_examples::bench_workloads::parse_child_args();
    let profiler = dhat::Profiler::builder().testing().build();
    let timed =
        memassert_examples::bench_workloads::run_workload(&args.workload, args.scale, &mut || {});
    let stats = dhat::HeapStats::get();
    memassert_examples::bench_workloads::print_result(
        &args,
        &timed,
        &[("allocs", stats.total_blocks.to_string())],
    );
    drop(profiler);
}
