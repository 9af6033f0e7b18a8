//! Threads that live for the process (rayon's global pool, built with
//! `build_global`; a thread a `static`'s `OnceLock` starts) are the
//! process's: what std keeps for such a thread while it lives is not the
//! leak of the test that happened to start it. As a named thread starts,
//! std copies its name for the stack-overflow handler's message
//! (`std::sys::pal::unix::stack_overflow::thread_info::set_current_info`,
//! freed when the thread exits): a block per thread on a stack of std's
//! frames only, below memassert's own `pthread_create` trampoline. Found
//! by rayon's `tests/named-threads.rs` under a leak gate (34 B in 2 blocks,
//! its site `<unknown>` with no frames).
//!
//! Each case runs alone in a fresh process (`run_alone`: the test is
//! alone, so its gate counts every thread), and again with a 64 KiB leak
//! planted (`MEMASSERT_PLANT=1`), which must fail with that leak alone.
#![cfg(target_os = "linux")]

use memassert_tests::{plant_leak as plant, run_alone, PLANTED};

memassert::install!();

mod alone {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    use memassert::track_alloc;
    use rayon::prelude::*;

    use super::plant;

    /// rayon's `tests/named-threads.rs`, with the planted leak made by a
    /// job on one of the named pool's threads.
    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn rayon_named_global_pool() {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("hello-name-test-{i}"))
            .build_global()
            .unwrap();
        let names = (0..1000)
            .into_par_iter()
            .flat_map(|_| std::thread::current().name().map(str::to_owned))
            .collect::<HashSet<String>>();
        assert!(!names.is_empty());
        assert!(names.iter().all(|n| n.starts_with("hello-name-test-")));
        rayon::join(plant, || {});
    }

    static STARTED: AtomicBool = AtomicBool::new(false);
    static PROCESS_THREAD: OnceLock<std::thread::Thread> = OnceLock::new();

    /// A named thread started by one-time initialisation, which lives for
    /// the process.
    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn named_thread_of_a_static() {
        PROCESS_THREAD.get_or_init(|| {
            std::thread::Builder::new()
                .name("process-thread".into())
                .spawn(|| {
                    STARTED.store(true, Ordering::Release);
                    loop {
                        std::thread::park();
                    }
                })
                .unwrap()
                .thread()
                .clone()
        });
        while !STARTED.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        plant();
    }
}

/// The case passes alone, and fails with exactly the planted leak.
fn passes_alone(test: &str) {
    let (passed, text) = run_alone(test, &[]);
    assert!(passed, "{test} should pass:\n{text}");
    let (passed, text) = run_alone(test, &[("MEMASSERT_PLANT", "1")]);
    assert!(
        !passed && text.contains(PLANTED),
        "{test} should fail:\n{text}"
    );
}

#[test]
fn rayon_named_global_pool_is_the_process_s() {
    passes_alone("alone::rayon_named_global_pool");
}

#[test]
fn named_thread_of_a_static_is_the_process_s() {
    passes_alone("alone::named_thread_of_a_static");
}
