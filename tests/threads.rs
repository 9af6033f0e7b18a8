//! Several threads allocating and freeing each other's blocks: exact final
//! counts through per-thread scopes, all-threads scopes (per site), filtered
//! snapshots and the global counters.

use std::hint::black_box;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Barrier;
use std::thread;

use memassert::{Key, Scope};

mod tracker_support;
use tracker_support::{at_line, exact_global, serial, totals, Tracing};

memassert::install!();

const WORKERS: usize = 4;
const PER_WORKER: usize = 300;

/// Size of the blocks worker `i` makes.
fn size_of_worker(i: usize) -> usize {
    16 * (i + 1) + 3
}

type Channels = (Vec<SyncSender<Box<[u8]>>>, Vec<Receiver<Box<[u8]>>>);

/// One bounded channel per worker, with room for every block: made before
/// measuring (their buffers are allocated up front) and never blocking.
fn channels() -> Channels {
    (0..WORKERS)
        .map(|_| sync_channel(WORKERS * PER_WORKER))
        .unzip()
}

/// Worker `i` makes `PER_WORKER` blocks and sends each to worker `i + 1`;
/// it receives worker `i - 1`'s blocks and drops them, or keeps and returns
/// them. Returns the kept blocks and the line where the blocks are made.
fn ring(keep: bool) -> (Vec<Box<[u8]>>, u32) {
    let (senders, receivers) = channels();
    let make_line = std::sync::OnceLock::new();
    let kept = thread::scope(|s| {
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let tx = senders[(i + 1) % WORKERS].clone();
                let make_line = &make_line;
                s.spawn(move || {
                    for _ in 0..PER_WORKER {
                        let block = vec![i as u8; size_of_worker(i)].into_boxed_slice();
                        let _ = make_line.set(line!() - 1);
                        tx.send(block).unwrap();
                    }
                    drop(tx);
                    let from = (i + WORKERS - 1) % WORKERS;
                    let mut kept = Vec::new();
                    for _ in 0..PER_WORKER {
                        let block = rx.recv().unwrap();
                        assert_eq!(block.len(), size_of_worker(from));
                        assert!(block.iter().all(|&b| b as usize == from));
                        if keep {
                            kept.push(block);
                        } else {
                            drop(black_box(block));
                        }
                    }
                    kept
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (kept, *make_line.get().unwrap())
}

fn total_bytes() -> usize {
    (0..WORKERS).map(size_of_worker).sum::<usize>() * PER_WORKER
}

#[test]
fn blocks_freed_on_other_threads_leave_nothing() {
    let _t = Tracing::start(1);
    let (kept, line) = ring(false);
    assert!(kept.is_empty());
    let snap = memassert::take_snapshot();
    assert_eq!(totals(&at_line(&snap, file!(), line)), (0, 0));
}

#[test]
fn blocks_kept_from_other_threads_are_exact() {
    let _t = Tracing::start(1);
    let (kept, line) = ring(true);
    assert_eq!(kept.len(), WORKERS * PER_WORKER);
    let snap = memassert::take_snapshot();
    let at_make = at_line(&snap, file!(), line);
    assert_eq!(totals(&at_make), (total_bytes(), WORKERS * PER_WORKER));
    // One traceback for all, in the worker closure.
    let stats = at_make.statistics(Key::Line);
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].count, WORKERS * PER_WORKER);
    assert!(stats[0].traceback.site().function.contains("ring"));
    // Each block is traced, with the worker's line, wherever it lives now.
    for block in &kept {
        let tb = memassert::traceback_of(block.as_ptr()).expect("traced");
        assert_eq!(tb.site().line, line);
    }
    // Freed here, on the test's thread.
    drop(kept);
    let snap = memassert::take_snapshot();
    assert_eq!(totals(&at_line(&snap, file!(), line)), (0, 0));
}

#[test]
fn traced_memory_returns_to_zero_after_cross_thread_frees() {
    let _t = Tracing::start(1);
    exact_global(|| {
        memassert::clear_traces();
        let (kept, _) = ring(true);
        let current = memassert::traced_memory().current;
        assert!(current >= total_bytes(), "{current}");
        drop(kept);
        let (kept, _) = ring(false);
        drop(kept);
        // Spawning, running and joining the threads left nothing behind
        // either.
        assert_eq!(memassert::traced_memory().current, 0);
        assert!(memassert::traced_memory().peak >= total_bytes());
    });
}

#[test]
fn all_threads_scope_counts_every_worker() {
    let _lock = serial();
    let scope = Scope::options().all_threads().start();
    let (kept, line) = ring(true);
    let report = scope.finish();
    // Other threads of this process (libtest's) count in an all-threads
    // scope too: look at this file's line only.
    let made: Vec<_> = report
        .allocation_statistics(Key::Line)
        .into_iter()
        .filter(|s| s.traceback.site().file == file!() && s.traceback.site().line == line)
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(
        (made[0].size, made[0].count),
        (total_bytes(), WORKERS * PER_WORKER)
    );
    let leaked: Vec<_> = report
        .statistics(Key::Line)
        .into_iter()
        .filter(|s| s.traceback.site().line == line)
        .collect();
    assert_eq!(leaked.len(), 1);
    assert_eq!(
        (leaked[0].size, leaked[0].count),
        (total_bytes(), WORKERS * PER_WORKER)
    );
    assert!(report.leaked() >= total_bytes());
    drop(kept);

    // Freed by the workers themselves: nothing leaked at that line.
    let scope = Scope::options().all_threads().start();
    let (_, line) = ring(false);
    let report = scope.finish();
    assert!(report
        .statistics(Key::Line)
        .iter()
        .all(|s| s.traceback.site().line != line));
    let made: Vec<_> = report
        .allocation_statistics(Key::Line)
        .into_iter()
        .filter(|s| s.traceback.site().line == line)
        .collect();
    assert_eq!(made[0].count, WORKERS * PER_WORKER);
}

#[test]
fn per_thread_scope_sees_frees_on_other_threads() {
    let _lock = serial();
    let (senders, receivers) = channels();
    let report = thread::scope(|s| {
        let workers: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                s.spawn(move || {
                    for block in rx {
                        drop(black_box(block));
                    }
                })
            })
            .collect();
        // Opened after spawning: only this thread's blocks count.
        let scope = Scope::start();
        for k in 0..WORKERS * PER_WORKER {
            let block = vec![1u8; 10 + k % 7].into_boxed_slice();
            senders[k % WORKERS].send(block).unwrap();
        }
        drop(senders);
        for worker in workers {
            worker.join().unwrap();
        }
        scope.finish()
    });
    let total: usize = (0..WORKERS * PER_WORKER).map(|k| 10 + k % 7).sum();
    assert_eq!(report.allocs(), WORKERS * PER_WORKER);
    assert_eq!(report.total(), total);
    assert_eq!((report.leaked(), report.leaked_blocks()), (0, 0));
    assert!(report.peak() <= total && report.peak() >= 16);
}

#[test]
fn per_thread_scope_ignores_other_threads() {
    let _lock = serial();
    // A barrier blocks without allocating (a blocking channel receive
    // would register a waker, and that allocation is this thread's).
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            let other: Vec<u8> = black_box(Vec::with_capacity(10_000));
            drop(other);
            let kept: Vec<u8> = black_box(Vec::with_capacity(20_000));
            barrier.wait();
            drop(kept);
        });
        let scope = Scope::start();
        barrier.wait();
        barrier.wait();
        let mine: Vec<u8> = black_box(Vec::with_capacity(7));
        let report = scope.finish();
        assert_eq!(report.allocs(), 1);
        assert_eq!(report.total(), 7);
        assert_eq!(report.peak(), 7);
        assert_eq!(report.leaked(), 7);
        drop(mine);
    });
}

#[test]
fn many_threads_churn() {
    let _t = Tracing::start(2);
    exact_global(|| {
        memassert::clear_traces();
        let kept: Vec<Vec<Vec<u8>>> = thread::scope(|s| {
            let handles: Vec<_> = (0..8usize)
                .map(|t| {
                    s.spawn(move || {
                        let mut live: Vec<Vec<u8>> = Vec::with_capacity(64);
                        for k in 0..4000usize {
                            let v = vec![t as u8; 1 + (k * 31 + t) % 200];
                            if k % 3 == 0 && !live.is_empty() {
                                live.swap_remove((k * 7) % live.len());
                            }
                            if live.len() < 64 {
                                live.push(v);
                            }
                        }
                        live
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let expected: usize = kept
            .iter()
            .map(|live| live.capacity() * 24 + live.iter().map(|v| v.capacity()).sum::<usize>())
            .sum::<usize>()
            + kept.capacity() * 24;
        assert_eq!(memassert::traced_memory().current, expected);
        drop(kept);
        assert_eq!(memassert::traced_memory().current, 0);
    });
}

/// A thread-local whose destructor allocates and frees while the thread is
/// being torn down, with tracing and a scope on: nothing deadlocks, panics
/// or loses count.
#[test]
fn allocations_in_thread_local_destructors() {
    struct AllocatesOnDrop(Vec<u8>);
    impl Drop for AllocatesOnDrop {
        fn drop(&mut self) {
            let scratch: Vec<String> = (0..100).map(|i| i.to_string()).collect();
            self.0.extend_from_slice(scratch.concat().as_bytes());
        }
    }
    thread_local! {
        static SLOT: std::cell::RefCell<Option<AllocatesOnDrop>> = const { std::cell::RefCell::new(None) };
    }
    let _lock = serial();
    let scope = memassert::Scope::options().all_threads().start();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                SLOT.with(|s| *s.borrow_mut() = Some(AllocatesOnDrop(vec![0; 64])));
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let report = scope.finish();
    // Each worker's 64-byte block and its destructor's scratch were freed.
    assert!(report.total() >= 4 * 64, "{}", report);
    let leaked_here: usize = report
        .statistics(memassert::Key::Line)
        .iter()
        .filter(|s| s.traceback.site().file == "tests/threads.rs")
        .map(|s| s.size)
        .sum();
    assert_eq!(leaked_here, 0, "{report}");
}
