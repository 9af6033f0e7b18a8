//! Code shared by memassert's examples.

pub mod bench_workloads;
#[path = "startup_lib.rs"]
pub mod startup;
