// What a library keeps for the process is not the test's leak (issue 19):
// a global pool's queue growing, a lock table created on first contention,
// an executor's state created on first use, all lazily and without std's
// once primitives. No rule tells them from a test filling its own static
// cache (both stay reachable from a global), so memassert keeps a short
// list of known infrastructure sites, users add theirs (`ignore = ...`,
// `MEMASSERT_SUPPRESSIONS`), and a failure report says what was not counted.
//
// Each case runs alone in a fresh process (`run_alone`), and again with a
// 64 KiB leak planted next to it (`MEMASSERT_PLANT=1`), which must fail and
// list the infrastructure's blocks under "Not counted".

use memassert_tests::{plant_leak as plant, run_alone, PLANTED};

memassert::install!();

mod alone {
    use memassert::track_alloc;
    use rayon::prelude::*;

    use super::plant;

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn rayon_global_queue() {
        // Every parallel call from outside the pool pushes a job on the
        // global injector, which takes a new block every 63 jobs.
        for i in 0..200u32 {
            let sum: u32 = (0..4u32).into_par_iter().map(|x| x + i).sum();
            assert_eq!(sum, 6 + 4 * i);
        }
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn parking_lot_table() {
        // What a lock's unlock does when it saw waiters: the first use of
        // the global lock table creates it.
        let key = 0usize;
        let woken = unsafe {
            parking_lot_core::unpark_all(
                std::ptr::addr_of!(key) as usize,
                parking_lot_core::DEFAULT_UNPARK_TOKEN,
            )
        };
        assert_eq!(woken, 0);
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn parking_lot_contention() {
        // Real contention: a thread of the body parks on a held lock. The
        // first park in the process creates the lock table inside the
        // parking thread's thread-local initialisation (one-time, never
        // counted); `parking_lot_table` above is the path outside it.
        let lock = std::sync::Arc::new(parking_lot::Mutex::new(0u32));
        for _ in 0..3 {
            let held = lock.lock();
            let waiter = {
                let lock = lock.clone();
                std::thread::spawn(move || *lock.lock() += 1)
            };
            // Long enough for the waiter to stop spinning and park.
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(held);
            waiter.join().unwrap();
        }
        assert_eq!(*lock.lock(), 3);
        plant();
    }

    static EXECUTOR: async_executor::Executor<'static> = async_executor::Executor::new();

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn async_executor_state() {
        EXECUTOR.spawn(async {}).detach();
        while EXECUTOR.try_tick() {}
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B", ignore = "memassert_tests::pool::Registry::grow")]
    fn ignored_by_the_attribute() {
        memassert_tests::pool::Registry::grow();
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn ignored_by_the_suppressions_file() {
        memassert_tests::pool::Registry::grow();
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B", ignore = "infrastructure::alone")]
    fn own_code_is_never_ignored() {
        // The pattern names this very test: its own line still counts.
        std::mem::forget(std::hint::black_box(vec![0u8; 64 << 10]));
    }
}

/// The case passes alone; with a planted leak it fails, and the report
/// lists `not_counted` under its figures.
fn passes(test: &str, env: &[(&str, &str)], not_counted: &str) {
    let (passed, text) = run_alone(test, env);
    assert!(passed, "{test} {env:?} should pass:\n{text}");
    let mut planted = env.to_vec();
    planted.push(("MEMASSERT_PLANT", "1"));
    let (passed, text) = run_alone(test, &planted);
    assert!(
        !passed && text.contains(PLANTED),
        "{test} {planted:?} should fail:\n{text}"
    );
    assert!(
        text.contains(not_counted),
        "{test}: no {not_counted:?} in:\n{text}"
    );
}

#[test]
fn rayon_global_queue_is_infrastructure() {
    passes(
        "alone::rayon_global_queue",
        &[],
        "at crossbeam_deque::deque::Injector::push (known infrastructure: a work-stealing pool's global queue",
    );
}

#[test]
fn parking_lot_table_is_infrastructure() {
    passes(
        "alone::parking_lot_table",
        &[],
        "at parking_lot_core::parking_lot::create_hashtable (known infrastructure: parking_lot's global lock table",
    );
}

#[test]
fn parking_lot_contention_is_not_the_test_s() {
    let (passed, text) = run_alone("alone::parking_lot_contention", &[]);
    assert!(passed, "{text}");
    let (passed, text) = run_alone("alone::parking_lot_contention", &[("MEMASSERT_PLANT", "1")]);
    assert!(!passed && text.contains(PLANTED), "{text}");
}

#[test]
fn async_executor_state_is_infrastructure() {
    passes(
        "alone::async_executor_state",
        &[],
        "at async_executor::Executor::state_ptr (known infrastructure: an executor's state",
    );
}

#[test]
fn attribute_ignores_a_user_pattern() {
    passes(
        "alone::ignored_by_the_attribute",
        &[],
        "Not counted: 1.1 KiB in 2 blocks at memassert_tests::pool::Registry::grow (ignore = \"memassert_tests::pool::Registry::grow\")",
    );
}

#[test]
fn suppressions_file_ignores_a_user_pattern() {
    let dir = std::env::temp_dir().join(format!("memassert-suppressions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("suppressions.txt");
    std::fs::write(
        &file,
        "# known infrastructure of this suite\n\nmemassert_tests::pool::Registry::grow   # the pool\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    passes(
        "alone::ignored_by_the_suppressions_file",
        &[("MEMASSERT_SUPPRESSIONS", file)],
        &format!(
            "Not counted: 1.1 KiB in 2 blocks at memassert_tests::pool::Registry::grow (MEMASSERT_SUPPRESSIONS={file})"
        ),
    );
    // Without the file, the registry's block is the test's.
    let (passed, text) = run_alone("alone::ignored_by_the_suppressions_file", &[]);
    assert!(
        !passed && text.contains("memassert: leaked 1.1 KiB in 2 blocks"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_pattern_never_hides_the_test_s_own_code() {
    let (passed, text) = run_alone("alone::own_code_is_never_ignored", &[]);
    assert!(!passed && text.contains(PLANTED), "{text}");
}
