// What a test owns on an async runtime (issue 10): the body's own code and
// the tasks it spawns, on any flavor, with #[track_alloc] above or below
// #[tokio::test]; never the runtime's own start-up or per-thread caches.

use std::sync::Mutex;

use memassert::track_alloc;

memassert::install!();

/// Where leaky tasks put what they keep: one block each, no container.
static KEPT_ABOVE: Mutex<Option<Vec<u8>>> = Mutex::new(None);
static KEPT_BELOW: Mutex<Option<Vec<u8>>> = Mutex::new(None);
static KEPT_CURRENT: Mutex<Option<Vec<u8>>> = Mutex::new(None);

// tokio's thread-local park (`runtime/park.rs`) is made on first use and
// kept for the thread's life: not the body's leak.
#[tokio::test]
#[track_alloc(leaks = "0B")]
async fn clean_body_below_tokio_test_passes() {
    let v = std::hint::black_box(vec![1u8; 100]);
    tokio::task::yield_now().await;
    assert_eq!(v.len(), 100);
}

// tokio's defer list (`scheduler/defer.rs`) grows when the body yields and
// lives as long as the runtime.
#[track_alloc(leaks = "0B")]
#[tokio::test]
async fn clean_body_above_tokio_test_passes() {
    tokio::task::yield_now().await;
    let v = std::hint::black_box(vec![1u8; 100]);
    tokio::task::yield_now().await;
    assert_eq!(v.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[track_alloc(leaks = "0B")]
async fn clean_body_multi_thread_passes() {
    let handle = tokio::spawn(async { vec![0u8; 4096].len() });
    assert_eq!(handle.await.unwrap(), 4096);
    tokio::task::yield_now().await;
}

#[track_alloc(leaks = "0B")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "memassert: leaked 64 KiB in 1 block exceeds leaks 0B")]
async fn task_leak_multi_thread_above_fails() {
    tokio::spawn(async {
        *KEPT_ABOVE.lock().unwrap() = Some(vec![7u8; 64 * 1024]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[track_alloc(leaks = "0B")]
#[should_panic(expected = "async_runtimes.rs:61: size=64.0 KiB, count=1")]
async fn task_leak_multi_thread_below_fails_and_names_the_line() {
    tokio::spawn(async {
        *KEPT_BELOW.lock().unwrap() = Some(vec![7u8; 64 * 1024]);
    })
    .await
    .unwrap();
}

#[tokio::test]
#[track_alloc(leaks = "0B")]
#[should_panic(expected = "memassert: leaked 32 KiB in 1 block exceeds leaks 0B")]
async fn task_leak_current_thread_fails() {
    tokio::spawn(async {
        *KEPT_CURRENT.lock().unwrap() = Some(vec![7u8; 32 * 1024]);
    })
    .await
    .unwrap();
}

#[track_alloc(max = "100 KiB")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "memassert: peak 1 MiB exceeds max 100 KiB")]
async fn task_peak_on_a_worker_counts() {
    tokio::spawn(async {
        drop(std::hint::black_box(vec![0u8; 1 << 20]));
    })
    .await
    .unwrap();
}
