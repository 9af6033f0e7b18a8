//! `Tracker<StatsAlloc<System>>`: memassert over stats_alloc keeps both
//! sets of counters right, and `Report::stats()` speaks stats_alloc's terms
//! (feature `stats_alloc`). One test in this binary, so stats_alloc's
//! process-wide `Region` sees only its work (libtest's main thread is idle
//! while the test runs).

use std::alloc::System;

use memassert::Tracker;
use stats_alloc::{Region, StatsAlloc};

#[global_allocator]
static GLOBAL: Tracker<StatsAlloc<System>> = Tracker::new(StatsAlloc::system());

fn workload() -> Vec<String> {
    let mut kept = Vec::with_capacity(4);
    for i in 0..10 {
        kept.push(format!("entry {i:04}"));
        let mut scratch: Vec<u8> = Vec::with_capacity(8);
        scratch.extend_from_slice(&[0; 100]);
        scratch.truncate(10);
        scratch.shrink_to_fit();
    }
    kept
}

#[test]
fn both_counters_agree() {
    assert!(memassert::is_installed());

    // stats_alloc's view of the workload, with the tracker idle (it then
    // adds nothing: every call goes straight through).
    let region = Region::new(GLOBAL.inner());
    let reference = workload();
    let expected = region.change();
    drop(reference);
    assert!(expected.allocations > 10 && expected.reallocations > 10);

    // The same workload in a scope: `Report::stats()` matches stats_alloc
    // to the count and the byte.
    let region = Region::new(GLOBAL.inner());
    let (kept, report) = memassert::track(workload);
    let seen_by_stats_alloc = region.change();
    let ours = report.stats();
    assert_eq!(ours.allocations, expected.allocations);
    assert_eq!(ours.reallocations, expected.reallocations);
    assert_eq!(ours.deallocations, expected.deallocations);
    assert_eq!(ours.bytes_allocated, expected.bytes_allocated);
    assert_eq!(ours.bytes_deallocated, expected.bytes_deallocated);
    assert_eq!(ours.bytes_reallocated, expected.bytes_reallocated);

    // memassert's own figures are exact beside them.
    assert_eq!(
        report.allocs(),
        expected.allocations + expected.reallocations
    );
    let live = kept.iter().map(String::capacity).sum::<usize>() + kept.capacity() * 24;
    assert_eq!(report.leaked(), live);
    assert_eq!(
        report.leaked(),
        ours.bytes_allocated - ours.bytes_deallocated
    );

    // While tracking, stats_alloc also sees the tracker's own bookkeeping
    // (its memory comes from the inner allocator), on top of the workload.
    assert!(seen_by_stats_alloc.allocations >= expected.allocations);
    assert!(seen_by_stats_alloc.bytes_allocated - seen_by_stats_alloc.bytes_deallocated >= live);
    drop(kept);
}
