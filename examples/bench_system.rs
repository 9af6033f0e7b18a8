//! Benchmark child: the plain system allocator (the baseline).
//! Run by `cargo run --release --example bench`; see `bench_workloads.rs`.

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    memassert_examples::bench_workloads::plain_child_main();
}
