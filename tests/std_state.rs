// What std keeps for the process is never a test's leak (issue 19): the
// backtrace symbolizer's parsed debug info, panic machinery, libtest's
// captured output, whatever the environment and wherever the user's
// `Debug`/`Display` code sits in the stack.
//
// Each case is the first of its kind in a fresh process (`run_alone`): the
// one-time state is built inside the body, as in the suites that reported
// it. Each case also runs with a 64 KiB leak planted next to it
// (`MEMASSERT_PLANT=1`), which must still fail.
//
// Unix only: on windows-gnu (run under wine in CI) std's frames are not yet
// classified this way, and 7 of these cases fail there (README, Known
// limitations).
#![cfg(unix)]

use memassert_tests::{plant_leak as plant, run_alone, PLANTED};

memassert::install!();

mod alone {
    use std::panic::catch_unwind;

    use memassert::track_alloc;

    use super::plant;

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn caught_panic() {
        assert!(catch_unwind(|| panic!("expected by the test")).is_err());
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn forced_backtrace() {
        let trace = std::backtrace::Backtrace::force_capture();
        assert!(trace.to_string().contains("forced_backtrace"));
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn panicking_thread() {
        assert!(std::thread::spawn(|| panic!("expected by the test"))
            .join()
            .is_err());
        plant();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    async fn panicking_task() {
        assert!(tokio::spawn(async { panic!("expected by the test") })
            .await
            .is_err());
        plant();
    }

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("expected by the test");
        }
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn panic_in_drop() {
        assert!(catch_unwind(|| drop(PanicsOnDrop)).is_err());
        plant();
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Point {
        x: i32,
        label: &'static str,
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn debug_printed_into_captured_output() {
        // A dependency's `Debug` (`f.pad("Empty")`), then a derived one.
        println!("{:?}", rayon::iter::empty::<u8>());
        println!(
            "{:?}",
            Point {
                x: 1,
                label: "a point with a long label, to grow the buffer"
            }
        );
        eprintln!(
            "{:#?}",
            Point {
                x: 2,
                label: "to stderr"
            }
        );
        plant();
    }

    #[test]
    #[ignore = "run alone in its own process by the tests below"]
    #[track_alloc(leaks = "0B")]
    fn own_formatting_still_counts() {
        // `write!` into the body's own buffer from inside a `Debug` that is
        // being printed: the body's, and kept.
        struct Keeps;
        impl std::fmt::Debug for Keeps {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut own = Vec::new();
                std::io::Write::write_fmt(&mut own, format_args!("{:064}", 0)).unwrap();
                std::mem::forget(own);
                f.pad("Keeps")
            }
        }
        println!("{:?}", Keeps);
    }
}

// Std's vendored crates are not std's state: a `HashMap` (hashbrown inside
// std) the body keeps is the body's, as is a kept `Backtrace`'s owner.
#[test]
#[memassert::track_alloc(leaks = "0B")]
#[should_panic(expected = "memassert: leaked")]
fn kept_hash_map_still_counts() {
    let mut map = std::collections::HashMap::new();
    map.insert(1u64, [0u8; 64]);
    std::mem::forget(map);
}

fn passes(test: &str, env: &[(&str, &str)]) {
    let (passed, text) = run_alone(test, env);
    assert!(passed, "{test} {env:?} should pass:\n{text}");
    let mut planted = env.to_vec();
    planted.push(("MEMASSERT_PLANT", "1"));
    let (passed, text) = run_alone(test, &planted);
    assert!(
        !passed && text.contains(PLANTED),
        "{test} {planted:?} should fail:\n{text}"
    );
}

#[test]
fn caught_panic_without_rust_backtrace() {
    passes("alone::caught_panic", &[]);
}

#[test]
fn caught_panic_with_rust_backtrace_1() {
    passes("alone::caught_panic", &[("RUST_BACKTRACE", "1")]);
}

#[test]
fn caught_panic_with_rust_backtrace_full() {
    passes("alone::caught_panic", &[("RUST_BACKTRACE", "full")]);
}

#[test]
fn forced_backtrace_is_std_s() {
    passes("alone::forced_backtrace", &[]);
}

#[test]
fn panicking_thread_with_rust_backtrace_1() {
    passes("alone::panicking_thread", &[("RUST_BACKTRACE", "1")]);
}

#[test]
fn panicking_task_with_rust_backtrace_1() {
    passes("alone::panicking_task", &[("RUST_BACKTRACE", "1")]);
}

#[test]
fn panic_in_drop_with_rust_backtrace_1() {
    passes("alone::panic_in_drop", &[("RUST_BACKTRACE", "1")]);
}

#[test]
fn captured_output_grown_inside_a_debug_impl_is_std_s() {
    passes("alone::debug_printed_into_captured_output", &[]);
}

#[test]
fn own_buffer_written_inside_a_printed_debug_impl_still_counts() {
    let (passed, text) = run_alone("alone::own_formatting_still_counts", &[]);
    assert!(
        !passed && text.contains("memassert: leaked 64 B in 1 block exceeds leaks 0B"),
        "{text}"
    );
}
