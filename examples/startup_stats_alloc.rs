//! Start-up child: `stats_alloc`'s `Region` around the body. Run by
//! `cargo run --release --example startup`.

use std::alloc::System;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    memassert_examples::startup::child(|body| {
        let region = Region::new(GLOBAL);
        body();
        let change = region.change();
        assert_eq!(change.allocations, change.deallocations);
    });
}
