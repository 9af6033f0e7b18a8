// Scoped threads and thread pools run the body's code: it is the body's.

use memassert::track_alloc;
use rayon::prelude::*;

memassert::install!();

#[test]
#[track_alloc(max = "100 KiB")]
#[should_panic(expected = "memassert: peak 1.5 MiB exceeds max 100 KiB")]
fn scoped_threads_count() {
    // Both blocks live at once: each thread holds its own until both have
    // allocated.
    let both = std::sync::Barrier::new(2);
    let hold = || {
        let block = std::hint::black_box(vec![0u8; 768 * 1024]);
        both.wait();
        block.len()
    };
    std::thread::scope(|s| {
        let a = s.spawn(hold);
        let b = s.spawn(hold);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(a + b, 1536 * 1024);
    });
}

#[test]
#[track_alloc(leaks = "0B")]
fn scoped_threads_clean_body_passes() {
    std::thread::scope(|s| {
        let a = s.spawn(|| vec![0u8; 1000].len());
        let b = s.spawn(|| vec![0u8; 1000].len());
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 2000);
    });
}

#[test]
#[track_alloc(allocs = 1000)]
#[should_panic(expected = "allocations exceed allocs 1000")]
fn rayon_workers_count() {
    let strings: Vec<String> = (0..50_000).into_par_iter().map(|i| i.to_string()).collect();
    assert_eq!(strings.len(), 50_000);
}

#[test]
#[track_alloc(leaks = "0B")]
fn rayon_clean_body_passes() {
    let strings: Vec<String> = (0..50_000).into_par_iter().map(|i| i.to_string()).collect();
    assert_eq!(strings.len(), 50_000);
}
