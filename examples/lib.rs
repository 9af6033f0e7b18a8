//! Code shared by memassert's examples.

pub mod bench_workloads;
