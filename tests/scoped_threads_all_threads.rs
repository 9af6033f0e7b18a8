// `threads = "all"` with scoped threads, clean body: std's bookkeeping of
// the threads (handles, packets) is not the body's, even when a thread's
// last cleanup runs after `thread::scope` returns. One test in this binary.

memassert::install!();

#[test]
#[memassert::track_alloc(threads = "all", leaks = "0B")]
fn scoped_threads_clean_body_all_threads_passes() {
    std::thread::scope(|s| {
        let a = s.spawn(|| vec![0u8; 1000].len());
        let b = s.spawn(|| vec![0u8; 1000].len());
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 2000);
    });
}
