//! Scopes and reports (issue 4): exact peak/total/allocs/leaks, nesting,
//! per-thread attribution, cross-thread frees, and the sites live at the peak.

use std::alloc::{alloc, dealloc, realloc, Layout};
use std::sync::mpsc;

use memassert::{Key, Scope};

memassert::install!();

/// All-threads scopes are one at a time per process: the tests that open
/// them take turns.
static ALL_THREADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn all_threads_turn() -> std::sync::MutexGuard<'static, ()> {
    ALL_THREADS.lock().unwrap_or_else(|e| e.into_inner())
}

fn raw(size: usize) -> (*mut u8, Layout) {
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: non-zero size.
    (unsafe { alloc(layout) }, layout)
}

fn free((ptr, layout): (*mut u8, Layout)) {
    // SAFETY: allocated by `raw` with this layout.
    unsafe { dealloc(ptr, layout) }
}

#[test]
fn exact_figures() {
    let scope = Scope::start();
    let a = raw(1000);
    let b = raw(24);
    free(a);
    let c = raw(500);
    let report = scope.finish();
    assert_eq!(report.peak(), 1024);
    assert_eq!(report.total(), 1524);
    assert_eq!(report.allocs(), 3);
    assert_eq!(report.leaked(), 524);
    assert_eq!(report.leaked_blocks(), 2);
    free(b);
    free(c);
}

#[test]
fn realloc_counts_as_a_request() {
    let scope = Scope::start();
    let (ptr, layout) = raw(100);
    // SAFETY: grows a block we own; the result replaces it.
    let grown = unsafe { realloc(ptr, layout, 4000) };
    let report = scope.finish();
    assert_eq!(report.allocs(), 2);
    assert_eq!(report.total(), 4100);
    assert_eq!(report.peak(), 4000);
    assert_eq!(report.leaked(), 4000);
    free((grown, Layout::from_size_align(4000, 8).unwrap()));
}

#[test]
fn nothing_allocated() {
    let scope = Scope::start();
    let x = std::hint::black_box(40u64) + 2;
    let _zst: Vec<()> = vec![(); 1000];
    let _box_unit = Box::new(());
    let report = scope.finish();
    assert_eq!(x, 42);
    assert_eq!(
        (
            report.peak(),
            report.total(),
            report.allocs(),
            report.leaked()
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn nested_scopes_count_inner_work_in_outer() {
    let outer = Scope::start();
    let a = raw(100);
    let inner = Scope::start();
    let b = raw(1000);
    let c = raw(10);
    free(c);
    let inner_report = inner.finish();
    free(a);
    let outer_report = outer.finish();
    assert_eq!(inner_report.peak(), 1010);
    assert_eq!(inner_report.leaked(), 1000);
    assert_eq!(outer_report.peak(), 1110);
    assert_eq!(outer_report.allocs(), 3);
    // b leaked from inner, so from outer too.
    assert_eq!(outer_report.leaked(), 1000);
    free(b);
}

#[test]
fn inner_leak_freed_later_is_freed_in_outer() {
    let outer = Scope::start();
    let inner = Scope::start();
    let b = raw(1000);
    let _ = inner.finish();
    free(b);
    let report = outer.finish();
    assert_eq!(report.leaked(), 0);
    assert_eq!(report.peak(), 1000);
}

#[test]
fn other_threads_do_not_count_by_default() {
    let scope = Scope::start();
    std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1 << 20])))
        .join()
        .unwrap();
    let mine = raw(64);
    let report = scope.finish();
    // The spawn itself allocates on this thread (thread handle, closure);
    // the megabyte on the other thread does not count.
    assert!(report.peak() < 1 << 20, "peak {}", report.peak());
    assert!(report.allocs() >= 1);
    free(mine);
}

#[test]
fn all_threads_counts_other_threads() {
    let _turn = all_threads_turn();
    let scope = Scope::options().all_threads().start();
    std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1 << 20])))
        .join()
        .unwrap();
    let report = scope.finish();
    assert!(report.peak() >= 1 << 20, "peak {}", report.peak());
    assert!(report.total() >= 1 << 20);
}

struct SendPtr(*mut u8, Layout);
// SAFETY: the block is only moved to another thread to be freed there.
unsafe impl Send for SendPtr {}

#[test]
fn block_freed_on_another_thread_is_freed_in_the_scope() {
    let scope = Scope::start();
    let (ptr, layout) = raw(4096);
    let (tx, rx) = mpsc::channel::<SendPtr>();
    let t = std::thread::spawn(move || {
        let p = rx.recv().unwrap();
        free((p.0, p.1));
    });
    tx.send(SendPtr(ptr, layout)).unwrap();
    t.join().unwrap();
    drop(tx);
    let report = scope.finish();
    assert!(report.peak() >= 4096);
    let leaked_here: usize = report
        .statistics(Key::Line)
        .iter()
        .filter(|s| s.traceback.site().file.ends_with("scopes.rs"))
        .map(|s| s.size)
        .sum();
    assert_eq!(leaked_here, 0, "{:#?}", report.statistics(Key::Line));
}

#[test]
fn parallel_scopes_do_not_see_each_other() {
    let handles: Vec<_> = (1..=4usize)
        .map(|i| {
            std::thread::spawn(move || {
                let scope = Scope::start();
                for _ in 0..100 {
                    free(raw(i * 1000));
                }
                let kept = raw(i * 10);
                let report = scope.finish();
                free(kept);
                (i, report)
            })
        })
        .collect();
    for h in handles {
        let (i, report) = h.join().unwrap();
        assert_eq!(report.allocs(), 101, "thread {i}");
        assert_eq!(report.total(), 100 * i * 1000 + i * 10, "thread {i}");
        assert_eq!(report.peak(), i * 1000, "thread {i}");
        assert_eq!(report.leaked(), i * 10, "thread {i}");
    }
}

#[test]
fn box_leak_is_reported_at_its_site() {
    let scope = Scope::start();
    let leaked: &'static mut [u8] = Box::leak(vec![1u8; 333].into_boxed_slice());
    let line = line!() - 1;
    let report = scope.finish();
    assert_eq!(leaked.len(), 333);
    assert_eq!((report.leaked(), report.leaked_blocks()), (333, 1));
    let stats = report.statistics(Key::Line);
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].traceback.site().file, "tests/scopes.rs");
    assert_eq!(stats[0].traceback.site().line, line);
}

#[test]
fn rc_cycle_is_a_leak() {
    use std::cell::RefCell;
    use std::rc::Rc;
    struct Node {
        next: RefCell<Option<Rc<Node>>>,
        _payload: [u8; 100],
    }
    let scope = Scope::start();
    {
        let a = Rc::new(Node {
            next: RefCell::new(None),
            _payload: [0; 100],
        });
        let b = Rc::new(Node {
            next: RefCell::new(Some(a.clone())),
            _payload: [0; 100],
        });
        *a.next.borrow_mut() = Some(b);
    }
    let report = scope.finish();
    assert_eq!(report.leaked_blocks(), 2);
    let stats = report.statistics(Key::Line);
    assert!(stats
        .iter()
        .all(|s| s.traceback.site().file == "tests/scopes.rs"));
    assert_eq!(stats.iter().map(|s| s.count).sum::<usize>(), 2);
}

#[test]
fn sites_live_at_the_peak_are_exact() {
    let scope = Scope::start();
    let a = raw(3000); // live at the peak
    let b = raw(5000); // freed before the peak
    free(b);
    let c = raw(6000); // the peak: 3000 + 6000
    free(c);
    let d = raw(10); // after the peak
    let report = scope.finish();
    assert_eq!(report.peak(), 9000);
    let at_peak = report.peak_statistics(Key::Traceback);
    let sizes: Vec<usize> = at_peak.iter().map(|s| s.size).collect();
    assert_eq!(sizes, vec![6000, 3000]);
    free(a);
    free(d);
}

#[test]
fn checkpoint_measures_growth_only() {
    let mut scope = Scope::start();
    let cache = raw(1 << 16);
    scope.checkpoint();
    let grown = raw(100);
    let report = scope.finish();
    assert_eq!(report.leaked(), 100);
    assert_eq!(report.statistics(Key::Line)[0].size, 100);
    free(cache);
    free(grown);
}

#[test]
fn println_output_does_not_count() {
    let scope = Scope::start();
    println!("some captured output {}", 42);
    eprintln!("and some more");
    let report = scope.finish();
    assert_eq!(report.allocs(), 0, "{}", report);
}

#[test]
fn track_returns_value_and_report() {
    let (v, report) = memassert::track(|| vec![7u32; 10]);
    assert_eq!(v.len(), 10);
    assert_eq!(report.leaked(), 40);
}

#[test]
fn failure_report_text() {
    let (_, report) = memassert::track(|| drop(vec![0u8; 2048]));
    let text = report.to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("peak 2 KiB, total 2 KiB in 1 allocation, leaked 0 B in 0 blocks")
    );
    assert_eq!(lines.next(), Some("Top 1 site by live size at peak"));
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("#1: tests/scopes.rs:")
            && first.ends_with(": size=2048 B, count=1, average=2048 B"),
        "{first}"
    );
    assert_eq!(
        lines.next(),
        Some("    let (_, report) = memassert::track(|| drop(vec![0u8; 2048]));")
    );
    let tb = lines.next().unwrap();
    assert!(
        tb.starts_with("    tests/scopes.rs:") && tb.contains(" in scopes::failure_report_text"),
        "{tb}"
    );
}

#[test]
fn counting_scope_is_exact_without_sites() {
    let scope = Scope::options().counting().start();
    let a = raw(1000);
    let b = raw(24);
    free(a);
    let (tx, rx) = mpsc::channel::<SendPtr>();
    let t = std::thread::spawn(move || {
        let p = rx.recv().unwrap();
        free((p.0, p.1));
    });
    let (ptr, layout) = raw(4096);
    tx.send(SendPtr(ptr, layout)).unwrap();
    t.join().unwrap();
    drop(tx);
    let report = scope.finish();
    // 1000 + 24 live, then 24 + 4096 (the channel's own blocks come and
    // go in between): the peak is at least both.
    assert!(report.peak() >= 4096 + 24, "{}", report.peak());
    assert_eq!(report.leaked(), 24);
    assert_eq!(report.leaked_blocks(), 1);
    assert!(report.statistics(Key::Line).is_empty());
    assert!(report.peak_statistics(Key::Line).is_empty());
    free(b);
}

#[test]
fn counting_scope_inside_a_tracking_scope_keeps_sites_for_the_outer() {
    let outer = Scope::start();
    let inner = Scope::options().counting().start();
    let kept = raw(77);
    let inner_report = inner.finish();
    let outer_report = outer.finish();
    assert_eq!(inner_report.leaked(), 77);
    let sites = outer_report.statistics(Key::Line);
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert_eq!(sites[0].traceback.site().file, "tests/scopes.rs");
    free(kept);
}

/// Scopes opening and closing on other threads never switch this thread's
/// scope off (the open count and the "scopes open" flag change together).
#[test]
fn concurrent_open_and_close_never_loses_a_scope() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    let churners: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                while !STOP.load(Ordering::Relaxed) {
                    let _ = Scope::options().counting().start().finish();
                }
            })
        })
        .collect();
    for _ in 0..20_000 {
        let scope = Scope::options().counting().start();
        let block = std::hint::black_box(Box::new(7u64));
        let report = scope.finish();
        drop(block);
        assert_eq!((report.allocs(), report.peak()), (1, 8));
    }
    STOP.store(true, Ordering::Relaxed);
    for c in churners {
        c.join().unwrap();
    }
}

/// All-threads scopes closed out of order leave no closed scope behind as
/// the one other threads count in.
#[test]
fn all_threads_scopes_closed_out_of_order() {
    let _turn = all_threads_turn();
    let a = Scope::options().all_threads().start();
    let b = Scope::options().all_threads().start();
    let _ = a.finish();
    let _ = b.finish();
    // No scope is open on this thread now: another thread's allocation must
    // not count anywhere (a fresh scope on that thread sees only its own).
    let seen = std::thread::spawn(|| {
        let scope = Scope::start();
        drop(std::hint::black_box(vec![0u8; 10]));
        scope.finish().allocs()
    })
    .join()
    .unwrap();
    assert_eq!(seen, 1);
}

/// Code under test that resolves `backtrace` crate backtraces inside a
/// scope: the tracker symbolizes new stacks with a cache of its own, so the
/// `backtrace` crate's cache is never re-entered from the allocator.
#[test]
fn backtrace_crate_resolution_inside_a_scope() {
    let mut scope = Scope::start();
    let mut names = 0;
    for round in 0..3 {
        let bt = backtrace::Backtrace::new();
        names += bt
            .frames()
            .iter()
            .flat_map(|f| f.symbols())
            .filter(|s| s.name().is_some())
            .count();
        drop(bt);
        if round == 0 {
            // The first resolution fills the backtrace crate's own global
            // cache of debug info, which stays.
            scope.checkpoint();
        }
    }
    let report = scope.finish();
    assert!(names > 0);
    assert!(report.allocs() > 0);
    assert_eq!(report.leaked(), 0, "{report}");
}
