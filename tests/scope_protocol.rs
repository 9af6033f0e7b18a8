// The scope protocol under every interleaving: one regression test per
// window found in review (issue 9), most of them made deterministic with
// the tracker's test-only pause points (feature `test-pause-points`): a
// worker thread is stopped at an exact point inside the allocator while the
// test thread closes, reopens or forks around it.
//
// Each window test runs the same way whether the protocol makes the closing
// thread wait (it must) or not: a releaser thread lets the stopped worker go
// after a delay, so the test never hangs, and the figures checked afterwards
// are wrong unless the protocol ordered the two threads correctly.

use std::alloc::{alloc, dealloc, realloc, Layout};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use memassert::__private::pause_points::{self, Point};
use memassert::{Key, Scope};

memassert::install!();

/// Tests here look at process-wide state (slots, the all-threads scope,
/// the live table): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A raw block, so that no collection's growth policy gets in the way.
#[derive(Clone, Copy)]
struct Block(*mut u8, Layout);
// SAFETY: a plain heap address; whoever holds it frees it once.
unsafe impl Send for Block {}

fn block(size: usize) -> Block {
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: non-zero size.
    let ptr = unsafe { alloc(layout) };
    assert!(!ptr.is_null());
    Block(ptr, layout)
}

fn free(b: Block) {
    // SAFETY: allocated by `block` (or resized by `grow`) with this layout.
    unsafe { dealloc(b.0, b.1) }
}

fn grow(b: Block, size: usize) -> Block {
    // SAFETY: a live block with its layout; the result replaces it.
    let ptr = unsafe { realloc(b.0, b.1, size) };
    assert!(!ptr.is_null());
    Block(ptr, Layout::from_size_align(size, 8).unwrap())
}

/// A thread that lets a stopped thread go on after a delay: made before
/// any scope opens, so that spawning it is nobody's allocation.
struct Releaser {
    order: &'static (Mutex<Option<(Point, Duration)>>, Condvar),
    handle: thread::JoinHandle<()>,
}

impl Releaser {
    fn new() -> Releaser {
        let order: &'static (Mutex<Option<(Point, Duration)>>, Condvar) =
            Box::leak(Box::new((Mutex::new(None), Condvar::new())));
        let ready = started();
        let handle = thread::spawn(move || {
            ready.wait();
            let (point, delay) = {
                let mut slot = order.0.lock().unwrap();
                loop {
                    if let Some(o) = slot.take() {
                        break o;
                    }
                    slot = order.1.wait(slot).unwrap();
                }
            };
            thread::sleep(delay);
            pause_points::release(point);
        });
        ready.wait();
        Releaser { order, handle }
    }

    /// Releases the thread stopped at `point` after `delay` (allocates
    /// nothing).
    fn release_later(&self, point: Point, delay: Duration) {
        *self.order.0.lock().unwrap() = Some((point, delay));
        self.order.1.notify_all();
    }

    fn join(self) {
        self.handle.join().unwrap();
    }
}

/// A rendezvous between a helper thread and the test thread that made it:
/// the maker returns only once the thread runs its own code. A new thread's
/// start-up (std's spawn hooks) frees a block, and if that happened later,
/// inside a window test, it could wait on the very shard a stopped thread
/// holds, while that thread waits on it (the releaser).
fn started() -> &'static std::sync::Barrier {
    Box::leak(Box::new(std::sync::Barrier::new(2)))
}

/// A block handed between threads, allocation-free.
struct Mailbox(Mutex<Option<Block>>);

impl Mailbox {
    fn new() -> &'static Mailbox {
        Box::leak(Box::new(Mailbox(Mutex::new(None))))
    }
    fn put(&self, b: Block) {
        *self.0.lock().unwrap() = Some(b);
    }
    fn take(&self) -> Block {
        self.0
            .lock()
            .unwrap()
            .take()
            .expect("a block in the mailbox")
    }
}

/// Bytes and blocks of this file's sites among `stats`: immune to what
/// the harness's threads allocate meanwhile in all-threads scopes.
fn here(stats: Vec<memassert::Statistic>) -> (usize, usize) {
    stats
        .iter()
        .filter(|s| s.traceback.frames()[0].file.ends_with("scope_protocol.rs"))
        .fold((0, 0), |(size, count), s| (size + s.size, count + s.count))
}

/// A worker thread that runs jobs sent to it, made before any scope opens
/// (so spawning it is nobody's allocation).
type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    job: &'static (Mutex<Option<Job>>, Condvar),
    done: &'static (Mutex<bool>, Condvar),
}

impl Worker {
    fn new() -> Worker {
        let job: &'static (Mutex<Option<Job>>, Condvar) =
            Box::leak(Box::new((Mutex::new(None), Condvar::new())));
        let done: &'static (Mutex<bool>, Condvar) =
            Box::leak(Box::new((Mutex::new(false), Condvar::new())));
        let ready = started();
        thread::spawn(move || {
            ready.wait();
            loop {
                let f = {
                    let mut slot = job.0.lock().unwrap();
                    loop {
                        if let Some(f) = slot.take() {
                            break f;
                        }
                        slot = job.1.wait(slot).unwrap();
                    }
                };
                f();
                *done.0.lock().unwrap() = true;
                done.1.notify_all();
            }
        });
        ready.wait();
        Worker { job, done }
    }

    /// Starts `f` on the worker. `f` is boxed by the caller, outside any
    /// scope it measures.
    fn send(&self, f: Box<dyn FnOnce() + Send>) {
        *self.done.0.lock().unwrap() = false;
        *self.job.0.lock().unwrap() = Some(f);
        self.job.1.notify_all();
    }

    fn wait(&self) {
        let mut done = self.done.0.lock().unwrap();
        while !*done {
            done = self.done.1.wait(done).unwrap();
        }
    }
}

// Finding 1: after 2^21 openings of one slot, tags ran into the live
// table's "traced" bit and every block of such a scope looked leaked.
#[test]
fn tags_never_alias_after_millions_of_openings() {
    let _serial = serial();
    for _ in 0..(1 << 21) + 4096 {
        drop(Scope::options().counting().start().finish());
    }
    let (_, report) = memassert::track(|| drop(std::hint::black_box(vec![0u8; 100])));
    assert_eq!((report.allocs(), report.leaked()), (1, 0));
    assert_eq!(report.leaked_blocks(), 0);
    // And with a block that does stay.
    let scope = Scope::options().counting().start();
    let kept = block(100);
    let report = scope.finish();
    assert_eq!((report.leaked(), report.leaked_blocks()), (100, 1));
    free(kept);
}

// Finding 2: a block made in a scope and grown on a thread with no scope
// left the scope's accounting.
#[test]
fn a_block_grown_on_another_thread_stays_in_its_scope() {
    let _serial = serial();
    let worker = Worker::new();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
    let back: &'static Mutex<Option<Vec<u8>>> = Box::leak(Box::new(Mutex::new(None)));
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let mut v = rx.recv().unwrap();
        v.reserve_exact(1 << 20);
        *back.lock().unwrap() = Some(v);
    });
    let scope = Scope::start();
    let v: Vec<u8> = Vec::with_capacity(8);
    tx.send(v).unwrap();
    worker.send(job);
    worker.wait();
    let v = back.lock().unwrap().take().unwrap();
    let report = scope.finish();
    assert_eq!(v.capacity(), 1 << 20);
    assert_eq!(report.leaked(), 1 << 20, "{report}");
    assert_eq!(report.leaked_blocks(), 1);
    // The request on the other thread counts as the scope's.
    assert_eq!(report.total(), 8 + (1 << 20));
}

// Finding 2, second half: a block grown by std on the scope's own thread
// (a stack classified as std's work) stays in the scope, at its own site.
// `Stdin::read_line` grows the caller's String inside `std::io::stdio`:
// run in a child process with a pipe on its stdin.
#[test]
fn a_block_grown_by_std_stays_in_its_scope() {
    if std::env::var_os("MEMASSERT_STDIN_CHILD").is_some() {
        let mut line = String::with_capacity(1);
        let scope = Scope::start();
        line.reserve_exact(2);
        let cap_before = line.capacity();
        std::io::stdin().read_line(&mut line).unwrap();
        let report = scope.finish();
        assert!(line.capacity() > cap_before, "std grew the String");
        // The block is the scope's since its reserve; std's growth of it
        // stays the scope's.
        assert_eq!(report.leaked(), line.capacity(), "{report}");
        assert_eq!(report.leaked_blocks(), 1, "{report}");
        return;
    }
    let _serial = serial();
    let mut child = memassert_tests::this_test_binary()
        .args([
            "--exact",
            "a_block_grown_by_std_stays_in_its_scope",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MEMASSERT_STDIN_CHILD", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&[b'x'; 5000]).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

// Finding 3, free vs close: a free whose record was removed but whose scope
// was not yet told must be charged before the scope's figures are taken,
// and its parent must see it even if the slot is reused at once.
#[test]
fn a_free_racing_a_close_is_charged_to_the_whole_chain() {
    let _serial = serial();
    let worker = Worker::new();
    let releaser = Releaser::new();
    let mailbox = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        pause_points::arm(Point::FreeRemoved);
        free(mailbox.take());
    });
    let outer = Scope::start();
    let inner = Scope::start();
    mailbox.put(block(4096));
    worker.send(job);
    pause_points::wait_stopped(Point::FreeRemoved);
    releaser.release_later(Point::FreeRemoved, Duration::from_millis(200));
    let inner_report = inner.finish();
    // Another scope takes the slot at once.
    let reuse = Scope::start();
    worker.wait();
    drop(reuse.finish());
    releaser.join();
    let outer_report = outer.finish();
    assert_eq!(inner_report.leaked(), 0, "{inner_report}");
    assert_eq!(outer_report.leaked(), 0, "{outer_report}");
    assert_eq!(outer_report.leaked_blocks(), 0);
}

// Finding 3, all-threads alloc vs close: an allocation charged to an
// all-threads scope that closes before the block is recorded must not be
// stored under the closed scope's tag (its later free would be lost).
#[test]
fn an_alloc_racing_an_all_threads_close_is_never_orphaned() {
    let _serial = serial();
    let worker = Worker::new();
    let releaser = Releaser::new();
    let kept = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        pause_points::arm(Point::AllocCharged);
        kept.put(block(3000));
    });
    let outer = Scope::start();
    let all = Scope::options().all_threads().start();
    worker.send(job);
    pause_points::wait_stopped(Point::AllocCharged);
    releaser.release_later(Point::AllocCharged, Duration::from_millis(200));
    let all_report = all.finish();
    let reuse = Scope::start();
    worker.wait();
    free(kept.take());
    drop(reuse.finish());
    releaser.join();
    let outer_report = outer.finish();
    // The all-threads scope counted the block (charged before it closed),
    // and it was live then.
    assert_eq!(
        here(all_report.statistics(Key::Line)),
        (3000, 1),
        "{all_report}"
    );
    // The outer scope counted it through the chain, and its free too.
    assert_eq!(
        here(outer_report.statistics(Key::Line)),
        (0, 0),
        "{outer_report}"
    );
    assert_eq!(here(outer_report.allocation_statistics(Key::Line)).0, 3000);
}

// Finding 3, realloc in flight vs close: the block is out of the live table
// while the inner realloc runs; the scope must not finish (and its slot
// must not be reused) until the new block is stored in the right scope.
#[test]
fn a_realloc_racing_a_close_keeps_the_block_in_the_chain() {
    let _serial = serial();
    let worker = Worker::new();
    let releaser = Releaser::new();
    let mailbox = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        pause_points::arm(Point::ReallocTaken);
        let b = mailbox.take();
        mailbox.put(grow(b, 100_000));
    });
    let outer = Scope::start();
    let inner = Scope::start();
    mailbox.put(block(64));
    worker.send(job);
    pause_points::wait_stopped(Point::ReallocTaken);
    releaser.release_later(Point::ReallocTaken, Duration::from_millis(200));
    let inner_report = inner.finish();
    let reuse = Scope::start();
    worker.wait();
    drop(reuse.finish());
    releaser.join();
    let grown = mailbox.take();
    let outer_report = outer.finish();
    assert_eq!(inner_report.leaked(), 100_000, "{inner_report}");
    assert_eq!(outer_report.leaked(), 100_000, "{outer_report}");
    assert_eq!(outer_report.leaked_blocks(), 1);
    free(grown);
}

// Finding 3, close order: a scope closed after its parent must not hand its
// blocks to the closed parent (they would stay recorded under a dead tag).
#[test]
fn scopes_closed_out_of_order_leave_no_record_behind() {
    let _serial = serial();
    let before = memassert::tracked_blocks();
    let outer = Scope::start();
    let inner = Scope::start();
    let b = block(500);
    let outer_report = outer.finish();
    let inner_report = inner.finish();
    assert_eq!(outer_report.leaked(), 500);
    assert_eq!(inner_report.leaked(), 500);
    // No scope is open and nothing traces: the block is nobody's.
    assert_eq!(memassert::tracked_blocks(), before);
    free(b);
    assert_eq!(memassert::__private::open_scopes(), 0);
}

// Finding 4: a per-thread scope opened while another thread's all-threads
// scope is open is not that scope's child.
#[test]
fn a_per_thread_scope_is_never_another_threads_child() {
    let _serial = serial();
    let worker = Worker::new();
    let kept = Mailbox::new();
    let figures: &'static Mutex<(usize, usize)> = Box::leak(Box::new(Mutex::new((0, 0))));
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let own = Scope::start();
        kept.put(block(777));
        let report = own.finish();
        *figures.lock().unwrap() = (report.allocs(), report.leaked());
    });
    let all = Scope::options().all_threads().start();
    worker.send(job);
    worker.wait();
    let report = all.finish();
    free(kept.take());
    assert_eq!(*figures.lock().unwrap(), (1, 777));
    // The worker's block was its own scope's, not the all-threads one's.
    assert_eq!(
        here(report.allocation_statistics(Key::Line)),
        (0, 0),
        "{report}"
    );
    assert_eq!(here(report.statistics(Key::Line)), (0, 0), "{report}");
}

// Finding 4, second half: closing nested all-threads scopes out of order
// never leaves a per-thread scope as the one other threads count in.
#[test]
fn closing_all_threads_scopes_restores_only_all_threads_scopes() {
    let _serial = serial();
    let worker = Worker::new();
    let kept = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        kept.put(block(999));
    });
    let own = Scope::start();
    let a1 = Scope::options().all_threads().start();
    let a2 = Scope::options().all_threads().start();
    drop(a1.finish());
    drop(a2.finish());
    // No all-threads scope is open now: the worker counts nowhere.
    worker.send(job);
    worker.wait();
    let report = own.finish();
    free(kept.take());
    assert_eq!(
        here(report.allocation_statistics(Key::Line)),
        (0, 0),
        "{report}"
    );
}

// Fast scopes (issue 13): a root counting scope charges its figures in the
// live table's shards, under the shard lock, and adds them up when it
// closes. The same windows as above, for that path.

/// Sends `job` (which arms `point`) to `worker`, runs `close` while the
/// worker is stopped there, and has `releaser` let it go 200 ms later.
/// Returns `close`'s value once the worker has finished. The worker and the
/// releaser are made by the caller before any scope opens.
fn close_while_stopped<R>(
    worker: &Worker,
    releaser: Releaser,
    point: Point,
    job: Job,
    close: impl FnOnce() -> R,
) -> R {
    worker.send(job);
    pause_points::wait_stopped(point);
    releaser.release_later(point, Duration::from_millis(200));
    let value = close();
    worker.wait();
    releaser.join();
    value
}

/// A root counting scope, as `Scope::options().counting()` opens outside
/// any other scope: the fast path.
fn fast_scope(all_threads: bool) -> Scope {
    let options = Scope::options().counting();
    if all_threads {
        options.all_threads().start()
    } else {
        options.start()
    }
}

// A free stopped between removing its record and charging the scope: the
// close must wait for it (it holds the shard), and the next fast scope,
// which reuses the slot and the shard counters, starts from zero.
#[test]
fn a_free_racing_a_fast_close_is_charged_before_the_figures_are_taken() {
    let _serial = serial();
    let worker = Worker::new();
    let releaser = Releaser::new();
    let mailbox = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        pause_points::arm(Point::FreeRemoved);
        free(mailbox.take());
    });
    let before = memassert::tracked_blocks();
    let scope = fast_scope(false);
    mailbox.put(block(4096));
    let report = close_while_stopped(&worker, releaser, Point::FreeRemoved, job, || {
        scope.finish()
    });
    assert_eq!(
        (report.leaked(), report.leaked_blocks()),
        (0, 0),
        "{report}"
    );
    assert_eq!((report.allocs(), report.peak()), (1, 4096), "{report}");
    assert_eq!(report.stats().deallocations, 1);
    let reuse = fast_scope(false);
    let b = block(10);
    let reuse_report = reuse.finish();
    assert_eq!(
        (
            reuse_report.allocs(),
            reuse_report.leaked(),
            reuse_report.leaked_blocks()
        ),
        (1, 10, 1),
        "{reuse_report}"
    );
    assert_eq!(reuse_report.stats().deallocations, 0);
    free(b);
    assert_eq!(memassert::tracked_blocks(), before);
}

// An allocation charged to a fast all-threads scope and stopped before its
// record is stored: the close must wait for the record and take it out of
// the scope, or a later free would be charged to whoever reuses the slot.
#[test]
fn an_alloc_racing_a_fast_all_threads_close_is_never_orphaned() {
    let _serial = serial();
    let worker = Worker::new();
    let releaser = Releaser::new();
    let kept = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        pause_points::arm(Point::AllocCharged);
        kept.put(block(3000));
    });
    let before = memassert::tracked_blocks();
    let all = fast_scope(true);
    let all_report =
        close_while_stopped(&worker, releaser, Point::AllocCharged, job, || all.finish());
    // Counted (charged before the close), live at the close. A counting
    // scope takes every thread's allocations, the harness's too: at least.
    assert!(all_report.leaked() >= 3000, "{all_report}");
    assert!(all_report.leaked_blocks() >= 1, "{all_report}");
    assert_eq!(
        memassert::tracked_blocks(),
        before,
        "a record outlived its scope"
    );
    // Freed inside the slot's next scope: not that scope's block.
    let reuse = fast_scope(false);
    free(kept.take());
    let reuse_report = reuse.finish();
    assert_eq!(
        (reuse_report.leaked(), reuse_report.leaked_blocks()),
        (0, 0),
        "{reuse_report}"
    );
    assert_eq!(reuse_report.stats().deallocations, 0, "{reuse_report}");
}

// A realloc in flight (old record taken, scope pinned) while its fast scope
// closes: the close waits for the new block, which the scope counts as its
// own live block, and which then leaves any scope.
#[test]
fn a_realloc_racing_a_fast_close_is_counted_and_then_nobodys() {
    let _serial = serial();
    let worker = Worker::new();
    let releaser = Releaser::new();
    let mailbox = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        pause_points::arm(Point::ReallocTaken);
        let b = mailbox.take();
        mailbox.put(grow(b, 100_000));
    });
    let before = memassert::tracked_blocks();
    let scope = fast_scope(false);
    mailbox.put(block(64));
    let report = close_while_stopped(&worker, releaser, Point::ReallocTaken, job, || {
        scope.finish()
    });
    let grown = mailbox.take();
    assert_eq!(
        (report.leaked(), report.leaked_blocks()),
        (100_000, 1),
        "{report}"
    );
    assert_eq!((report.allocs(), report.peak()), (2, 100_000), "{report}");
    assert_eq!(report.stats().reallocations, 1);
    assert_eq!(memassert::tracked_blocks(), before);
    let reuse = fast_scope(false);
    free(grown);
    let reuse_report = reuse.finish();
    assert_eq!(
        (reuse_report.leaked(), reuse_report.leaked_blocks()),
        (0, 0)
    );
    assert_eq!(reuse_report.stats().deallocations, 0);
}

// Scopes inside a fast scope are charged through it (the chain ends in the
// shards), whichever closes first.
#[test]
fn scopes_inside_a_fast_scope_charge_it_in_either_close_order() {
    let _serial = serial();
    let before = memassert::tracked_blocks();
    for counting_child in [false, true] {
        for child_first in [false, true] {
            let root = fast_scope(false);
            let child = if counting_child {
                Scope::options().counting().start()
            } else {
                Scope::start()
            };
            let kept = block(500);
            free(block(70));
            let (root_report, child_report) = if child_first {
                let c = child.finish();
                (root.finish(), c)
            } else {
                let r = root.finish();
                (r, child.finish())
            };
            let case = format!("counting child: {counting_child}, child first: {child_first}");
            for report in [&root_report, &child_report] {
                assert_eq!(report.allocs(), 2, "{case}\n{report}");
                assert_eq!(report.peak(), 570, "{case}\n{report}");
                assert_eq!(
                    (report.leaked(), report.leaked_blocks()),
                    (500, 1),
                    "{case}\n{report}"
                );
            }
            assert_eq!(memassert::tracked_blocks(), before, "{case}");
            free(kept);
        }
    }
    assert_eq!(memassert::__private::open_scopes(), 0);
}

// Many threads allocating, freeing each other's blocks and growing them
// while fast all-threads scopes open and close around them: every report
// adds up (live blocks against allocations and frees, within what the
// workers can hold; a shard share not zeroed for the next scope, or a wrap,
// breaks that), and no record is left behind.
#[test]
fn fast_scopes_stay_exact_under_cross_thread_churn() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _serial = serial();
    let before = memassert::tracked_blocks();
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let passing: &'static Mutex<Vec<Block>> =
        Box::leak(Box::new(Mutex::new(Vec::with_capacity(64))));
    let workers: Vec<_> = (0..3)
        .map(|t| {
            thread::spawn(move || {
                let mut mine = Vec::with_capacity(64);
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let b = block(if t == 2 { 16 } else { 48 });
                    // Thread 2 grows its blocks to 48 (a realloc).
                    let b = if t == 2 { grow(b, 48) } else { b };
                    if i.is_multiple_of(3) {
                        let mut p = passing.lock().unwrap();
                        if p.len() < 64 {
                            p.push(b);
                        } else {
                            free(b);
                        }
                        // Someone else's block, freed here.
                        if let Some(other) = p.pop() {
                            free(other);
                        }
                    } else if mine.len() < 64 {
                        mine.push(b);
                    } else {
                        free(b);
                        free(mine.pop().unwrap());
                    }
                }
                for b in mine {
                    free(b);
                }
            })
        })
        .collect();
    let mut checked = 0;
    for _ in 0..300 {
        let scope = fast_scope(true);
        thread::yield_now();
        let report = scope.finish();
        let stats = report.stats();
        let (allocated, freed) = (stats.allocations, stats.deallocations);
        // Live blocks are the scope's allocations less its frees, plus the
        // blocks from before it that it resized (those become its own):
        // between the two. Counted on every thread, the harness's too.
        let live = report.leaked_blocks();
        assert!(live + freed >= allocated, "{report}");
        assert!(live + freed <= allocated + stats.reallocations, "{report}");
        // The workers hold at most 3 x 64 + 64 + 3 blocks at once.
        assert!(live <= 300, "{report}");
        assert!(report.leaked() <= 300 * 48 + 4096, "{report}");
        assert!(report.peak() >= report.leaked(), "{report}");
        checked += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    for b in passing.lock().unwrap().drain(..) {
        free(b);
    }
    assert_eq!(checked, 300);
    assert_eq!(
        memassert::tracked_blocks(),
        before,
        "records outlived their scopes"
    );
    assert_eq!(memassert::__private::open_scopes(), 0);
}

// Finding 5: fork while another thread holds a live-table shard lock: the
// child must not deadlock on its first free (tracking is off there).
#[cfg(unix)]
#[test]
fn a_forked_child_never_waits_on_a_lock_held_at_the_fork() {
    let _serial = serial();
    let worker = Worker::new();
    let mailbox = Mailbox::new();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        pause_points::arm(Point::FreeRemoved);
        free(mailbox.take());
    });
    let scope = Scope::start();
    let b = block(256);
    mailbox.put(b);
    worker.send(job);
    // The worker now holds the block's shard lock (and is inside the
    // tracker); the block is still allocated in the child's copy.
    pause_points::wait_stopped(Point::FreeRemoved);
    // SAFETY: the child only frees, asks memassert one question and exits.
    let pid = unsafe { libc_fork() };
    if pid == 0 {
        free(b);
        let refused = std::panic::catch_unwind(memassert::tracked_blocks).is_err();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc_exit(if refused { 0 } else { 3 }) };
    }
    assert!(pid > 0, "fork failed");
    let status = wait_with_timeout(pid, Duration::from_secs(10));
    pause_points::release(Point::FreeRemoved);
    worker.wait();
    let report = scope.finish();
    assert_eq!(
        status,
        Some(0),
        "the child hung or failed (None: still running after 10 s)"
    );
    assert_eq!(report.leaked(), 0);
}

#[cfg(unix)]
extern "C" {
    #[link_name = "fork"]
    fn libc_fork() -> i32;
    #[link_name = "_exit"]
    fn libc_exit(code: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}

/// The child's exit code, or `None` (after killing it) if it did not exit
/// within `limit`.
#[cfg(unix)]
fn wait_with_timeout(pid: i32, limit: Duration) -> Option<i32> {
    const WNOHANG: i32 = 1;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: plain syscall on our own child.
        let r = unsafe { waitpid(pid, &mut status, WNOHANG) };
        if r == pid {
            // WIFEXITED / WEXITSTATUS.
            return if status & 0x7f == 0 {
                Some((status >> 8) & 0xff)
            } else {
                Some(128 + (status & 0x7f))
            };
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: as above; SIGKILL.
            unsafe {
                kill(pid, 9);
                waitpid(pid, &mut status, 0);
            }
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
