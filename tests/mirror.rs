//! The tracemalloc mirror, function by function: start/stop/is_tracing,
//! traceback_limit, clear_traces, traced_memory, reset_peak, tracker_memory,
//! traceback_of and take_snapshot.
//!
//! Every test holds the binary's lock (`Tracing::start` / `serial`): global
//! tracing is process-wide. Exact checks of the global counters go through
//! `exact_global` (see `tracker_support`).

use std::alloc::{alloc, dealloc, Layout};
use std::hint::black_box;
use std::panic::catch_unwind;

use memassert::{Key, Usage, MAX_FRAMES};

mod tracker_support;
use tracker_support::{at_line, exact_global, only, serial, totals, Tracing};

memassert::install!();

/// A block of exactly `size` bytes, freed on drop.
struct Block {
    ptr: *mut u8,
    layout: Layout,
}

impl Block {
    fn new(size: usize) -> Block {
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc(layout) };
        assert!(!ptr.is_null());
        Block {
            ptr: black_box(ptr),
            layout,
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

#[test]
fn is_installed_in_a_binary_with_install() {
    let _lock = serial();
    assert!(memassert::is_installed());
}

#[test]
fn start_stop_is_tracing() {
    let _lock = serial();
    assert!(!memassert::is_tracing());
    memassert::start(1);
    assert!(memassert::is_tracing());
    memassert::start(3); // again while tracing: still tracing, new limit
    assert!(memassert::is_tracing());
    assert_eq!(memassert::traceback_limit(), 3);
    memassert::stop();
    assert!(!memassert::is_tracing());
    memassert::stop(); // stopping twice is harmless
    assert!(!memassert::is_tracing());
    assert_eq!(memassert::traced_memory(), Usage::default());
}

#[test]
fn start_sets_the_traceback_limit() {
    let _lock = serial();
    for frames in [1, 2, 10, 25, MAX_FRAMES] {
        memassert::start(frames);
        assert_eq!(memassert::traceback_limit(), frames);
        memassert::stop();
    }
}

#[test]
fn start_rejects_zero_and_too_many_frames() {
    let _lock = serial();
    for frames in [0, MAX_FRAMES + 1, usize::MAX] {
        let message =
            memassert_tests::panic_text(catch_unwind(|| memassert::start(frames)).unwrap_err());
        assert!(
            message.contains("frames must be between 1 and"),
            "{frames}: {message}"
        );
        assert!(!memassert::is_tracing(), "a rejected start must not trace");
    }
}

#[test]
fn take_snapshot_panics_when_not_tracing() {
    let _lock = serial();
    let message = memassert_tests::panic_text(catch_unwind(memassert::take_snapshot).unwrap_err());
    assert!(message.contains("tracing is off"), "{message}");
    assert!(message.contains("memassert::start"), "{message}");
}

#[test]
fn traced_memory_is_exact_for_known_sizes() {
    let _t = Tracing::start(1);
    exact_global(|| {
        memassert::clear_traces();
        assert_eq!(memassert::traced_memory(), Usage::default());
        let a = Block::new(1000);
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 1000,
                peak: 1000
            }
        );
        let b = Block::new(24);
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 1024,
                peak: 1024
            }
        );
        drop(a);
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 24,
                peak: 1024
            }
        );
        let v: Vec<u64> = black_box(Vec::with_capacity(100));
        assert_eq!(memassert::traced_memory().current, 24 + 800);
        drop(v);
        drop(b);
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 0,
                peak: 1024
            }
        );
    });
}

#[test]
fn blocks_allocated_before_start_are_not_traced() {
    let _lock = serial();
    let mut before: Vec<Block> = (0..5).map(|_| Block::new(4096)).collect();
    memassert::start(1);
    exact_global(|| {
        memassert::clear_traces();
        assert_eq!(memassert::traceback_of(before[0].ptr), None);
        let snap = memassert::take_snapshot();
        assert_eq!(totals(&only(&snap, file!())), (0, 0));
        // Freeing an untraced block leaves the counters alone.
        let marker = Block::new(8);
        before.pop();
        assert_eq!(memassert::traced_memory().current, 8);
        drop(marker);
    });
    memassert::stop();
}

#[test]
fn stop_forgets_every_trace() {
    let _t = Tracing::start(1);
    let kept = Block::new(5000);
    assert!(memassert::traced_memory().current >= 5000);
    assert!(memassert::traceback_of(kept.ptr).is_some());
    memassert::stop();
    assert_eq!(memassert::traced_memory(), Usage::default());
    assert_eq!(memassert::traceback_of(kept.ptr), None);
    // Freeing a block that was traced before stop: no underflow, no effect.
    drop(kept);
    assert_eq!(memassert::traced_memory(), Usage::default());
    // Restarting traces afresh.
    memassert::start(1);
    exact_global(|| {
        memassert::clear_traces();
        let b = Block::new(77);
        assert_eq!(memassert::traced_memory().current, 77);
        drop(b);
    });
}

#[test]
fn clear_traces_forgets_blocks_but_keeps_tracing() {
    let _t = Tracing::start(1);
    let old = Block::new(123);
    assert!(memassert::traceback_of(old.ptr).is_some());
    memassert::clear_traces();
    assert!(memassert::is_tracing());
    assert_eq!(memassert::traceback_of(old.ptr), None);
    exact_global(|| {
        memassert::clear_traces();
        assert_eq!(memassert::traced_memory(), Usage::default());
        let new = Block::new(50);
        assert!(memassert::traceback_of(new.ptr).is_some());
        assert_eq!(memassert::traced_memory().current, 50);
        drop(new);
    });
    // The forgotten block's free is not subtracted.
    exact_global(|| {
        memassert::clear_traces();
        let marker = Block::new(8);
        let old = Block::new(1);
        drop(old);
        assert_eq!(memassert::traced_memory().current, 8);
        drop(marker);
    });
    drop(old);
}

#[test]
fn reset_peak_sets_peak_to_current() {
    let _t = Tracing::start(1);
    exact_global(|| {
        memassert::clear_traces();
        let small = Block::new(100);
        drop(Block::new(1 << 20));
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 100,
                peak: 100 + (1 << 20)
            }
        );
        memassert::reset_peak();
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 100,
                peak: 100
            }
        );
        // The peak keeps being updated after a reset.
        let big = Block::new(5000);
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 5100,
                peak: 5100
            }
        );
        drop(big);
        drop(small);
        assert_eq!(
            memassert::traced_memory(),
            Usage {
                current: 0,
                peak: 5100
            }
        );
    });
}

#[test]
fn tracker_memory_grows_with_live_blocks() {
    let _t = Tracing::start(1);
    let blocks: Vec<Box<u64>> = (0..20_000).map(Box::new).collect();
    let during = memassert::tracker_memory();
    let tracked = memassert::tracked_blocks();
    assert!(tracked >= 20_000, "{tracked}");
    // At least a slot (address + record) per recorded block. (Tables keep
    // their capacity once grown, so "before" may already be as large.)
    assert!(during >= tracked * 24, "{during} < {tracked} * 24");
    memassert::clear_traces();
    let after = memassert::tracker_memory();
    assert!(after > 0);
    assert!(after <= during, "{after} > {during}");
    drop(blocks);
}

#[test]
fn traceback_of_a_vec_names_its_line() {
    let _t = Tracing::start(1);
    let v: Vec<u8> = Vec::with_capacity(100);
    let line = line!() - 1;
    let tb = memassert::traceback_of(v.as_ptr()).expect("a traced block");
    assert_eq!(tb.len(), 1);
    assert_eq!(tb.site().file, file!());
    assert_eq!(tb.site().line, line);
    assert!(
        tb.site()
            .function
            .ends_with("traceback_of_a_vec_names_its_line"),
        "{:?}",
        tb.site()
    );
    // Also through a pointer into the block's start only.
    let boxed = Box::new([7u32; 16]);
    let boxed_line = line!() - 1;
    let tb = memassert::traceback_of(&*boxed as *const [u32; 16]).unwrap();
    assert_eq!(tb.site().line, boxed_line);
    assert_eq!(
        memassert::traceback_of(boxed.as_ptr().wrapping_add(1)),
        None
    );
}

#[test]
fn traceback_of_untraced_pointers_is_none() {
    let _t = Tracing::start(1);
    let on_stack = 5u64;
    assert_eq!(memassert::traceback_of(&on_stack), None);
    static STATIC: u8 = 0;
    assert_eq!(memassert::traceback_of(&STATIC), None);
    assert_eq!(memassert::traceback_of(std::ptr::null::<u8>()), None);
    let v: Vec<u8> = Vec::with_capacity(10);
    assert!(memassert::traceback_of(v.as_ptr()).is_some());
    memassert::stop();
    assert_eq!(memassert::traceback_of(v.as_ptr()), None);
    // A freed block is forgotten.
    memassert::start(1);
    let b = Block::new(64);
    let ptr = b.ptr;
    drop(b);
    assert_eq!(memassert::traceback_of(ptr), None);
}

fn level3() -> (Vec<u8>, u32) {
    (Vec::with_capacity(33), line!())
}

fn level2() -> (Vec<u8>, [u32; 2]) {
    let (v, a) = level3();
    (v, [a, line!() - 1])
}

fn level1() -> (Vec<u8>, [u32; 3]) {
    let (v, [a, b]) = level2();
    (v, [a, b, line!() - 1])
}

// CPython's test_set_traceback_limit: the traceback has the limit's length
// and the frames of the allocation, innermost first.
#[test]
fn traceback_follows_the_limit() {
    let _t = Tracing::start(10);
    let (v, [a, b, c]) = level1();
    let call = line!() - 1;
    let tb = memassert::traceback_of(v.as_ptr()).unwrap();
    assert!(tb.len() >= 4 && tb.len() <= 10, "{tb:?}");
    let lines: Vec<u32> = tb.frames()[..4].iter().map(|f| f.line).collect();
    assert_eq!(lines, [a, b, c, call], "{tb:?}");
    for (frame, function) in
        tb.frames()[..4]
            .iter()
            .zip(["level3", "level2", "level1", "traceback_follows_the_limit"])
    {
        assert_eq!(frame.file, file!());
        assert!(frame.function.ends_with(function), "{frame:?}");
    }
    memassert::stop();

    memassert::start(2);
    let (v2, [a, b, _]) = level1();
    let tb = memassert::traceback_of(v2.as_ptr()).unwrap();
    assert_eq!(tb.len(), 2);
    assert_eq!(tb.frames()[0].line, a);
    assert_eq!(tb.frames()[1].line, b);
    memassert::stop();

    memassert::start(1);
    let (v3, [a, _, _]) = level1();
    let tb = memassert::traceback_of(v3.as_ptr()).unwrap();
    assert_eq!(tb.len(), 1);
    assert_eq!(tb.site().line, a);
    drop((v, v2, v3));
}

#[test]
fn snapshot_holds_the_traced_blocks() {
    let _t = Tracing::start(5);
    let data = vec![0u8; 4096];
    let line = line!() - 1;
    let snap = memassert::take_snapshot();
    assert_eq!(snap.traceback_limit(), 5);
    let mine = at_line(&snap, file!(), line);
    assert_eq!(totals(&mine), (4096, 1));
    let trace = &mine.traces()[0];
    assert_eq!(trace.size, 4096);
    assert_eq!(trace.traceback.site().line, line);
    assert!(trace.traceback.len() <= 5);
    let top = mine.statistics(Key::Line);
    assert_eq!(top.len(), 1);
    assert_eq!((top[0].size, top[0].count), (4096, 1));
    // The snapshot is independent of the tracker: stop does not empty it.
    memassert::stop();
    assert_eq!(totals(&at_line(&snap, file!(), line)), (4096, 1));
    drop(data);
}

#[test]
fn snapshot_is_not_traced_itself() {
    let _t = Tracing::start(3);
    let kept = Block::new(10_000);
    let first = memassert::take_snapshot();
    let second = memassert::take_snapshot();
    assert_eq!(
        totals(&only(&first, file!())),
        totals(&only(&second, file!()))
    );
    assert_eq!(totals(&only(&second, file!())), (10_000, 1));
    drop((first, kept));
}
