//! Benchmark child: the plain system allocator again, built as a separate
//! binary (the A/A control). It runs the same code as `bench_system`, so its
//! distance from 1.00x is the run's noise floor: layout, caches and machine
//! load, not the allocator. Run by `cargo run --release --example bench`.

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    memassert_examples::bench_workloads::plain_child_main();
}
