//! Benchmark child: mod-alloc with its `backtraces` feature (frame-pointer
//! walk, per-call-site totals, no per-block records). Its walker needs
//! `-C force-frame-pointers=yes`, so the runner uses the frame-pointer build
//! of this binary and compares it with `system_fp`.
//! Run by `cargo run --release --example bench`; see `bench_workloads.rs`.

#[global_allocator]
static GLOBAL: mod_alloc::ModAlloc = mod_alloc::ModAlloc::new();

fn main() {
    let args = memassert_examples::bench_workloads::parse_child_args();
    let timed =
        memassert_examples::bench_workloads::run_workload(&args.workload, args.scale, &mut || {});
    let stats = GLOBAL.snapshot();
    let sites = GLOBAL.call_sites().len();
    memassert_examples::bench_workloads::print_result(
        &args,
        &timed,
        &[
            ("allocs", stats.alloc_count.to_string()),
            ("sites", sites.to_string()),
        ],
    );
}
