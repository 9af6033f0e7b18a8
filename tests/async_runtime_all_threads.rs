// `threads = "all"` on a multi-thread runtime, clean body: what the runtime
// keeps for itself (worker threads' names and caches) is not the body's.
// One test in this binary: an all-threads scope sees every thread of the
// process.

memassert::install!();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[memassert::track_alloc(threads = "all", leaks = "0B")]
async fn clean_body_all_threads_passes() {
    let handle = tokio::spawn(async { vec![0u8; 4096].len() });
    assert_eq!(handle.await.unwrap(), 4096);
}
