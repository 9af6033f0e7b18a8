//! Exact block and byte counts: realloc (grow, shrink, move), Vec growth,
//! alloc_zeroed, alignments up to 64 KiB, zero-sized types.
//!
//! Counted three ways: a per-thread `Scope` (exact whatever other threads
//! do), a snapshot filtered to this file (exact too), and the global
//! counters (`exact_global`).

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::hint::black_box;

use memassert::{Key, Scope};

mod tracker_support;
use tracker_support::{at_line, exact_global, only, totals, Tracing};

memassert::install!();

#[test]
fn realloc_grow_shrink_and_move() {
    let _t = Tracing::start(1);
    let layout = Layout::from_size_align(100, 8).unwrap();
    exact_global(|| {
        memassert::clear_traces();
        // SAFETY: each pointer is the live block of the previous call, with
        // the layout it was (re)allocated with; freed at the end.
        unsafe {
            let p = alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(0xAB, 100);
            assert_eq!(memassert::traced_memory().current, 100);

            let grown = realloc(p, layout, 1000);
            let grow_line = line!() - 1;
            assert!(!grown.is_null());
            assert_eq!(*grown.add(99), 0xAB, "contents kept");
            assert_eq!(memassert::traced_memory().current, 1000);
            assert_eq!(memassert::traced_memory().peak, 1000);
            let tb = memassert::traceback_of(grown).expect("the new block is traced");
            assert_eq!(
                tb.site().line,
                grow_line,
                "the site of a realloc is its call"
            );
            if grown != p {
                assert_eq!(memassert::traceback_of(p), None, "old address forgotten");
            }
            let snap = memassert::take_snapshot();
            assert_eq!(totals(&only(&snap, file!())), (1000, 1));

            let layout1000 = Layout::from_size_align(1000, 8).unwrap();
            let shrunk = realloc(grown, layout1000, 10);
            assert!(!shrunk.is_null());
            assert_eq!(*shrunk.add(9), 0xAB);
            assert_eq!(memassert::traced_memory().current, 10);
            let snap = memassert::take_snapshot();
            assert_eq!(totals(&only(&snap, file!())), (10, 1));

            // Far larger: glibc moves the block (mmap), the old address must
            // not stay recorded.
            let layout10 = Layout::from_size_align(10, 8).unwrap();
            let moved = realloc(shrunk, layout10, 4 << 20);
            assert!(!moved.is_null());
            assert_eq!(*moved.add(9), 0xAB);
            assert_eq!(memassert::traced_memory().current, 4 << 20);
            if moved != shrunk {
                assert_eq!(memassert::traceback_of(shrunk), None);
            }
            let snap = memassert::take_snapshot();
            assert_eq!(totals(&only(&snap, file!())), (4 << 20, 1));

            dealloc(moved, Layout::from_size_align(4 << 20, 8).unwrap());
        }
        assert_eq!(memassert::traced_memory().current, 0);
    });
}

#[test]
fn realloc_in_a_scope() {
    let _lock = tracker_support::serial();
    let layout = Layout::from_size_align(100, 8).unwrap();
    let scope = Scope::start();
    // SAFETY: as in `realloc_grow_shrink_and_move`.
    unsafe {
        let p = alloc(layout);
        let grown = realloc(p, layout, 1000);
        let shrunk = realloc(grown, Layout::from_size_align(1000, 8).unwrap(), 10);
        let moved = realloc(shrunk, Layout::from_size_align(10, 8).unwrap(), 4 << 20);
        assert!(!moved.is_null());
        dealloc(moved, Layout::from_size_align(4 << 20, 8).unwrap());
    }
    let report = scope.finish();
    assert_eq!(report.allocs(), 4, "one alloc and three reallocs");
    assert_eq!(report.total(), 100 + 1000 + 10 + (4 << 20));
    assert_eq!(report.peak(), 4 << 20);
    assert_eq!((report.leaked(), report.leaked_blocks()), (0, 0));
}

#[test]
fn vec_growth_is_one_block() {
    let _t = Tracing::start(1);
    let scope = Scope::start();
    let mut v: Vec<u64> = Vec::new();
    for i in 0..1000u64 {
        v.push(black_box(i));
    }
    let push_line = line!() - 2;
    let report = scope.finish();
    // Capacities 4, 8, ..., 1024: one allocation and eight reallocations.
    assert_eq!(v.capacity(), 1024);
    assert_eq!(report.allocs(), 9);
    assert_eq!(
        report.total(),
        8 * (4 + 8 + 16 + 32 + 64 + 128 + 256 + 512 + 1024)
    );
    // The old block is forgotten before the new one counts.
    assert_eq!(report.peak(), 8 * 1024);
    assert_eq!((report.leaked(), report.leaked_blocks()), (8192, 1));
    let leaks = report.statistics(Key::Line);
    assert_eq!(leaks.len(), 1);
    assert_eq!(leaks[0].traceback.site().line, push_line);
    assert_eq!((leaks[0].size, leaks[0].count), (8192, 1));

    let snap = memassert::take_snapshot();
    let at_push = at_line(&snap, file!(), push_line);
    assert_eq!(totals(&at_push), (8192, 1));
    assert_eq!(
        memassert::traceback_of(v.as_ptr()).unwrap().site().line,
        push_line
    );

    // Shrinking reallocates too.
    v.truncate(10);
    v.shrink_to_fit();
    let shrink_line = line!() - 1;
    let snap = memassert::take_snapshot();
    assert_eq!(totals(&at_line(&snap, file!(), push_line)), (0, 0));
    assert_eq!(totals(&at_line(&snap, file!(), shrink_line)), (80, 1));
}

#[test]
fn alloc_zeroed_is_counted_and_zeroed() {
    let _t = Tracing::start(1);
    let layout = Layout::from_size_align(4096, 16).unwrap();
    let scope = Scope::start();
    // SAFETY: non-zero size; freed with the same layout.
    let p = unsafe { alloc_zeroed(layout) };
    let line = line!() - 1;
    let zeroed_vec = vec![0u32; 1000]; // vec![0; n] uses alloc_zeroed
    let report = scope.finish();
    assert_eq!(report.allocs(), 2);
    assert_eq!(report.total(), 4096 + 4000);
    assert_eq!(report.peak(), 4096 + 4000);
    assert_eq!(report.leaked(), 4096 + 4000);
    assert!(zeroed_vec.iter().all(|&x| x == 0));
    assert!(!p.is_null());
    // SAFETY: 4096 initialised (zeroed) bytes.
    let bytes = unsafe { std::slice::from_raw_parts(p, 4096) };
    assert!(bytes.iter().all(|&b| b == 0));
    let tb = memassert::traceback_of(p).unwrap();
    assert_eq!((tb.site().file.as_str(), tb.site().line), (file!(), line));
    let snap = memassert::take_snapshot();
    assert_eq!(totals(&at_line(&snap, file!(), line)), (4096, 1));
    // SAFETY: allocated above with `layout`.
    unsafe { dealloc(p, layout) };
    drop(zeroed_vec);
}

#[test]
fn every_alignment_up_to_64k() {
    let _t = Tracing::start(1);
    let mut align = 1;
    while align <= 65536 {
        for size in [1, 24, align, 3 * align + 5] {
            let layout = Layout::from_size_align(size, align).unwrap();
            exact_global(|| {
                memassert::clear_traces();
                let scope = Scope::start();
                // SAFETY: non-zero size; every block freed with its layout.
                unsafe {
                    let p = alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc({layout:?}) misaligned");
                    p.write_bytes(0x5A, size);
                    assert_eq!(memassert::traced_memory().current, size, "{layout:?}");
                    let tb = memassert::traceback_of(p).expect("traced");
                    assert_eq!(tb.site().file, file!());

                    let z = alloc_zeroed(layout);
                    assert!(!z.is_null());
                    assert_eq!(z as usize % align, 0, "alloc_zeroed({layout:?}) misaligned");
                    assert_eq!(*z.add(size - 1), 0);
                    assert_eq!(memassert::traced_memory().current, 2 * size);

                    let r = realloc(p, layout, 2 * size);
                    assert!(!r.is_null());
                    assert_eq!(r as usize % align, 0, "realloc({layout:?}) misaligned");
                    assert_eq!(*r.add(size - 1), 0x5A, "realloc kept the contents");
                    assert_eq!(memassert::traced_memory().current, 3 * size);

                    dealloc(z, layout);
                    dealloc(r, Layout::from_size_align(2 * size, align).unwrap());
                }
                assert_eq!(memassert::traced_memory().current, 0);
                let report = scope.finish();
                assert_eq!(report.allocs(), 3, "{layout:?}");
                assert_eq!(report.total(), 4 * size, "{layout:?}");
                assert_eq!(report.peak(), 3 * size, "{layout:?}");
                assert_eq!(report.leaked(), 0, "{layout:?}");
            });
        }
        align *= 2;
    }
}

#[test]
fn zero_sized_types_allocate_nothing() {
    let _t = Tracing::start(1);
    exact_global(|| {
        memassert::clear_traces();
        let scope = Scope::start();
        let unit = black_box(Box::new(()));
        let units: Vec<()> = black_box(Vec::with_capacity(100));
        let mut pushed: Vec<()> = Vec::new();
        for _ in 0..1000 {
            pushed.push(());
        }
        let empty: Vec<u64> = black_box(Vec::new());
        let empty_string = black_box(String::new());
        let zst_slice: Box<[()]> = black_box(vec![(); 50].into_boxed_slice());
        assert_eq!(memassert::traced_memory().current, 0);
        assert_eq!(memassert::traced_memory().peak, 0);
        assert_eq!(memassert::traceback_of(&*unit), None);
        drop((unit, units, pushed, empty, empty_string, zst_slice));
        let report = scope.finish();
        let snap = memassert::take_snapshot();
        assert_eq!(totals(&only(&snap, file!())), (0, 0));
        assert_eq!(report.allocs(), 0);
        assert_eq!(report.total(), 0);
        assert_eq!(report.peak(), 0);
        assert_eq!(report.leaked(), 0);
    });
}

#[test]
fn many_blocks_exact() {
    let _t = Tracing::start(1);
    let scope = Scope::start();
    let boxes: Vec<Box<[u8; 48]>> = (0..5000).map(|_| Box::new([1u8; 48])).collect();
    let line = line!() - 1;
    let report = scope.finish();
    assert_eq!(report.allocs(), 5001);
    assert_eq!(report.total(), 5000 * 48 + 5000 * 8);
    assert_eq!(report.peak(), 5000 * 48 + 5000 * 8);
    assert_eq!((report.leaked(), report.leaked_blocks()), (5000 * 56, 5001));
    let snap = memassert::take_snapshot();
    let stats = at_line(&snap, file!(), line).statistics(Key::Line);
    // The boxes and the Vec holding them, on the same line.
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].count, 5001);
    assert_eq!(stats[0].size, 5000 * 48 + 5000 * 8);
    drop(boxes);
    let snap = memassert::take_snapshot();
    assert_eq!(totals(&at_line(&snap, file!(), line)), (0, 0));
}

#[test]
fn scope_counts_are_exact_without_global_tracing() {
    // Scopes are per thread; the lock only keeps this test's blocks out of
    // the other tests' global snapshots.
    let _lock = tracker_support::serial();
    let scope = Scope::start();
    let a: Vec<u8> = black_box(Vec::with_capacity(300));
    let b = black_box(Box::new([0u64; 8]));
    drop(a);
    let s = black_box(String::from("hello, world"));
    let report = scope.finish();
    assert_eq!(report.allocs(), 3);
    assert_eq!(report.total(), 300 + 64 + 12);
    assert_eq!(report.peak(), 364);
    assert_eq!((report.leaked(), report.leaked_blocks()), (76, 2));
    drop((b, s));
}
