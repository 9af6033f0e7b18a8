//! `#[track_alloc]` (issue 4): every argument passing and failing, stacking
//! with other test attributes, `repeat` against caches and growth.

use std::sync::{Mutex, OnceLock};

use memassert::track_alloc;

memassert::install!();

// ---- max -------------------------------------------------------------------

#[test]
#[track_alloc(max = "1 MiB")]
fn max_passes_under_the_limit() {
    let v = vec![0u8; 512 * 1024];
    assert_eq!(v.len(), 512 * 1024);
}

#[test]
#[track_alloc(max = "1MiB")]
#[should_panic(
    expected = "memassert: peak 2 MiB exceeds max 1MiB in track_alloc::max_fails_over_the_limit"
)]
fn max_fails_over_the_limit() {
    let v = vec![0u8; 2 * 1024 * 1024];
    assert_eq!(v.len(), 2 * 1024 * 1024);
}

#[test]
#[should_panic(expected = "memassert: peak 1000 B exceeds max 999 B")]
#[track_alloc(max = "999")]
fn max_is_exact_to_the_byte() {
    drop(vec![0u8; 1000]);
}

// The limit as written; exact bytes when the two would read alike.
#[test]
#[track_alloc(max = "1 MB")]
#[should_panic(expected = "memassert: peak 976.6 KiB (1000001 B) exceeds max 1 MB (1000000 B)")]
fn limits_read_as_written() {
    drop(std::hint::black_box(vec![0u8; 1_000_001]));
}

#[test]
#[track_alloc(max = "1000 B")]
fn max_equal_to_peak_passes() {
    drop(vec![0u8; 1000]);
}

// ---- leaks -----------------------------------------------------------------

#[test]
#[track_alloc(leaks = "0B")]
fn leaks_pass_when_everything_is_dropped() {
    let v: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(v.len(), 100);
}

#[test]
#[track_alloc(leaks = "0B")]
#[should_panic(expected = "memassert: leaked 100 B in 1 block exceeds leaks 0B")]
fn leaks_fail_on_box_leak() {
    let leaked: &'static mut [u8] = Box::leak(vec![7u8; 100].into_boxed_slice());
    assert_eq!(leaked[0], 7);
}

#[test]
#[track_alloc(leaks = "1KiB")]
fn leaks_within_allowance_pass() {
    let _ = Box::leak(Box::new([0u8; 512]));
}

// ---- allocs ----------------------------------------------------------------

#[test]
#[track_alloc(allocs = 0)]
fn allocs_zero_passes_for_allocation_free_code() {
    let mut buf = [0u64; 64];
    for (i, slot) in buf.iter_mut().enumerate() {
        *slot = i as u64 * 3;
    }
    assert_eq!(buf.iter().sum::<u64>(), 3 * 63 * 64 / 2);
}

#[test]
#[track_alloc(allocs = 0)]
#[should_panic(expected = "memassert: 1 allocation exceeds allocs 0")]
fn allocs_zero_fails_on_one_allocation() {
    // black_box: in release, LLVM would remove an unused Box's allocation.
    let b = std::hint::black_box(Box::new(5u64));
    assert_eq!(*b, 5);
}

#[test]
#[track_alloc(allocs = 1)]
#[should_panic(expected = "memassert: 2 allocations exceed allocs 1")]
fn allocs_count_reallocs() {
    let mut v: Vec<u8> = Vec::with_capacity(1);
    v.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(v.len(), 9);
}

// ---- total -----------------------------------------------------------------

#[test]
#[track_alloc(total = "10 KB")]
fn total_passes_under_the_limit() {
    for _ in 0..9 {
        drop(vec![0u8; 1000]);
    }
}

#[test]
#[track_alloc(total = "10KB")]
#[should_panic(expected = "memassert: total 11.7 KiB allocated exceeds total 10KB")]
fn total_fails_when_churn_adds_up() {
    for _ in 0..12 {
        drop(vec![0u8; 1000]);
    }
}

// ---- no_growth and repeat --------------------------------------------------

static CACHE: OnceLock<Vec<u64>> = OnceLock::new();

fn cached() -> &'static [u64] {
    CACHE.get_or_init(|| (0..1000).collect())
}

#[test]
#[track_alloc(repeat = 5, leaks = "0B", no_growth = "tests/track_alloc.rs")]
fn repeat_ignores_one_time_caches() {
    assert_eq!(cached().len(), 1000);
}

static GROWING: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[test]
#[track_alloc(repeat = 3, no_growth = "tests/track_alloc.rs")]
#[should_panic(expected = "memassert: live memory grew by")]
fn no_growth_catches_a_growing_static() {
    GROWING.lock().unwrap().push(vec![0u8; 256]);
}

static GROWING_BY_FN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn remember() {
    GROWING_BY_FN.lock().unwrap().push("x".repeat(64));
}

#[test]
#[track_alloc(repeat = 2, no_growth = "track_alloc::remember")]
#[should_panic(expected = "at sites matching no_growth \"track_alloc::remember\"")]
fn no_growth_by_function_path() {
    remember();
}

#[test]
#[track_alloc(no_growth = ["memassert/src/size.rs", "memassert/src/scope.rs:10"])]
fn no_growth_ignores_other_sites() {
    let _ = Box::leak(Box::new(1u8));
}

static GROWING_TYPO: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

// A pattern that names no file of the program could never fail: it fails
// at once, with the nearest name.
#[test]
#[track_alloc(repeat = 2, no_growth = "tests/trak_alloc.rs")]
#[should_panic(
    expected = "memassert: no_growth \"tests/trak_alloc.rs\" matches no source file in this program, so it could never fail in track_alloc::no_growth_typo_fails. Did you mean \"tests/track_alloc.rs\"?"
)]
fn no_growth_typo_fails() {
    GROWING_TYPO.lock().unwrap().push(vec![0u8; 256]);
}

#[test]
#[track_alloc(no_growth = "track_alloc::remembr")]
#[should_panic(
    expected = "memassert: no_growth \"track_alloc::remembr\" matches no function in this program, so it could never fail in track_alloc::no_growth_function_typo_fails. Did you mean \"track_alloc::remember\"?"
)]
fn no_growth_function_typo_fails() {
    let _ = std::hint::black_box(vec![0u8; 16]);
}

#[test]
#[track_alloc(repeat = 4)]
fn repeat_runs_the_body_n_times() {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    assert!(n <= 4);
}

// ---- frames, top, threads --------------------------------------------------

#[test]
#[track_alloc(max = "10 B", frames = 1, top = 1)]
#[should_panic(expected = "Top 1 site by live size at peak")]
fn top_limits_the_report() {
    let a = vec![0u8; 100];
    let b = vec![0u8; 200];
    drop((a, b));
}

#[test]
#[track_alloc(threads = "all", max = "64 KiB")]
#[should_panic(expected = "memassert: peak")]
fn threads_all_counts_other_threads() {
    std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1 << 20])))
        .join()
        .unwrap();
}

#[test]
#[track_alloc(max = "64 KiB")]
#[should_panic(expected = "memassert: peak 1 MiB exceeds max 64 KiB")]
fn threads_the_body_spawns_are_its_own() {
    std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1 << 20])))
        .join()
        .unwrap();
}

#[test]
#[track_alloc(threads = "current", max = "64 KiB")]
fn threads_current_ignores_other_threads() {
    std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1 << 20])))
        .join()
        .unwrap();
}

// ---- stacking with other attributes ---------------------------------------

#[test]
#[track_alloc(leaks = "0B")]
fn returns_result() -> Result<(), String> {
    let n: u32 = "42".parse().map_err(|e| format!("{e}"))?;
    assert_eq!(n, 42);
    Ok(())
}

#[test]
#[track_alloc(max = "1 KiB")]
#[should_panic(expected = "the body's own panic")]
fn body_panic_propagates_unchanged() {
    let _big = vec![0u8; 1 << 20];
    panic!("the body's own panic");
}

#[test]
#[ignore = "shows that #[ignore] stacks"]
#[track_alloc(max = "1 B")]
fn ignored_test() {
    drop(vec![0u8; 100]);
}

#[test]
#[track_alloc(allocs = 0)]
fn println_is_not_the_bodys_allocation() {
    println!(
        "captured by libtest, allocated by it, not by this test: {}",
        42
    );
}

async fn fetch(n: usize) -> Vec<u8> {
    vec![1u8; n]
}

// Above #[tokio::test], the attribute sees the `async fn` and measures the
// future alone: the runtime's start-up is not counted.
#[track_alloc(max = "1 KiB", leaks = "0B")]
#[tokio::test]
async fn async_body_is_measured() {
    let data = fetch(1000).await;
    assert_eq!(data.len(), 1000);
}

#[track_alloc(max = "1 KiB")]
#[tokio::test]
#[should_panic(expected = "memassert: peak 4 KiB exceeds max 1 KiB")]
async fn async_body_over_the_limit_fails() {
    let data = fetch(4096).await;
    drop(data);
}

// Below #[tokio::test], it wraps the generated fn: the runtime is built and
// dropped inside the scope, but its start-up is never the body's.
#[tokio::test]
#[track_alloc(max = "1 KiB", leaks = "0B")]
async fn below_tokio_test_measures_the_body_too() {
    let data = fetch(16).await;
    assert_eq!(data.len(), 16);
}

// A failing Result body is the test's own failure: its error (still live
// when the body returns) is not reported as a leak.
#[track_alloc(leaks = "0B")]
fn fails_with_an_error() -> Result<(), String> {
    Err("the body's own error, with an allocated message".to_string())
}

#[test]
fn error_results_are_returned_unchecked() {
    assert_eq!(
        fails_with_an_error().unwrap_err(),
        "the body's own error, with an allocated message"
    );
}
